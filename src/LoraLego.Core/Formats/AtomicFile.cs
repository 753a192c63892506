namespace LoraLego.Core.Formats;

/// <summary>
/// Writes go to a temporary sibling and are renamed into place, so an interrupted write
/// (Ctrl+C, a full disk, a crash) never leaves a half-written file under the real name.
/// </summary>
public static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        path = Path.GetFullPath(path);
        string temp = TempSibling(path);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
                File.Delete(temp);
        }
    }

    /// <summary>
    /// Creates a folder whole: it is filled under a temporary sibling name and renamed into
    /// place, so the folder either appears complete or not at all.
    /// </summary>
    public static void CreateDirectory(string path, Action<string> fill)
    {
        path = Path.GetFullPath(path.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar));
        string temp = TempSibling(path);
        Directory.CreateDirectory(temp);
        try
        {
            fill(temp);
            Directory.Move(temp, path);
        }
        finally
        {
            if (Directory.Exists(temp))
                Directory.Delete(temp, recursive: true);
        }
    }

    /// <summary>
    /// Like <see cref="CreateDirectory"/>, but an existing folder is replaced whole: the new one is
    /// filled completely before the old one is moved aside and deleted, so files the new contents
    /// lack do not linger, and a failed fill leaves the old folder untouched.
    /// </summary>
    public static void ReplaceDirectory(string path, Action<string> fill)
    {
        path = Path.GetFullPath(path.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar));
        if (!Directory.Exists(path))
        {
            CreateDirectory(path, fill);
            return;
        }
        string fresh = TempSibling(path), old = TempSibling(path);
        CreateDirectory(fresh, fill);
        Directory.Move(path, old);
        Directory.Move(fresh, path);
        Directory.Delete(old, recursive: true);
    }

    private static string TempSibling(string path)
    {
        string parent = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(parent);
        return Path.Combine(parent, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
    }
}
