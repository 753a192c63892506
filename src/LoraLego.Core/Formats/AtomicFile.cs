using System.Security.Cryptography;
using System.Text;

namespace LoraLego.Core.Formats;

/// <summary>
/// Writes go to a temporary sibling and are renamed into place, so an interrupted write
/// (Ctrl+C, a full disk, a crash, a kill) never leaves a half-written file under the real name.
/// </summary>
/// <remarks>
/// Temporary names are short (<c>.ll-</c>, 8 hex digits, <c>.tmp</c>: 16 characters, whatever the
/// target's name), so any name the file system takes can be written. A failure of the file system
/// is a <see cref="LoraException"/> naming the path the caller gave (never a temporary one), with a
/// message of its own: <see cref="ErrorIds.WriteFailed"/>, <c>PermissionDenied</c> or <c>PathTooLong</c>.
/// </remarks>
public static class AtomicFile
{
    /// <summary>The longest file name, in UTF-8 bytes, that the common file systems take (ext4, XFS, APFS, NTFS in UTF-16 units).</summary>
    public const int MaxNameBytes = 255;

    /// <summary>Stable error ids of write failures.</summary>
    public static class ErrorIds
    {
        public const string WriteFailed = "WriteFailed";
        public const string PathIsFile = "PathIsFile";
        public const string PathTooLong = "PathTooLong";
    }

    public static void Write(string path, Action<Stream> write)
    {
        path = System.IO.Path.GetFullPath(path);
        CheckWritable(path);
        string? temp = null;
        try
        {
            FileStream stream;
            (temp, stream) = CreateTempFile(path);
            using (stream)
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (IsFileSystemError(e))
        {
            throw WriteError(e, path, "the file");
        }
        finally
        {
            if (temp is not null)
                TryDelete(temp);
        }
    }

    /// <summary>
    /// Creates a folder whole: it is filled under a temporary sibling name and renamed into
    /// place, so the folder either appears complete or not at all.
    /// </summary>
    public static void CreateDirectory(string path, Action<string> fill)
    {
        path = Normalize(path);
        CheckWritable(path);
        string? temp = null;
        try
        {
            temp = CreateTempDirectory(path);
            Fill(temp, path, fill);
            Directory.Move(temp, path);
        }
        catch (Exception e) when (IsFileSystemError(e))
        {
            throw WriteError(e, path, "the folder");
        }
        finally
        {
            if (temp is not null && Directory.Exists(temp))
                TryDelete(temp);
        }
    }

    /// <summary>
    /// Like <see cref="CreateDirectory"/>, but an existing folder is replaced whole: the new one is
    /// filled completely before the old one is moved aside and deleted, so files the new contents
    /// lack do not linger, and a failed fill leaves the old folder untouched.
    /// </summary>
    public static void ReplaceDirectory(string path, Action<string> fill)
    {
        path = Normalize(path);
        if (!Directory.Exists(path))
        {
            CreateDirectory(path, fill);
            return;
        }
        string? fresh = null, old = null;
        try
        {
            fresh = CreateTempDirectory(path);
            Fill(fresh, path, fill);
            old = TempSibling(path);
            Directory.Move(path, old);
            Directory.Move(fresh, path);
            fresh = null;
        }
        catch (Exception e) when (IsFileSystemError(e))
        {
            throw WriteError(e, path, "the folder");
        }
        finally
        {
            if (fresh is not null && Directory.Exists(fresh))
                TryDelete(fresh);
            if (old is not null && Directory.Exists(old))
            {
                if (Directory.Exists(path))
                    TryDelete(old);
                else
                    Directory.Move(old, path);
            }
        }
    }

    /// <summary>
    /// Replaces files inside an existing folder, leaving its other files alone: every file is
    /// written completely (under a temporary folder inside it) before the first is renamed into
    /// place, so a failure or an interruption while writing leaves the old files as they were.
    /// </summary>
    public static void ReplaceFiles(string folder, IReadOnlyList<string> names, Action<string> fill)
    {
        folder = Normalize(folder);
        CheckWritable(folder);
        string? temp = null;
        try
        {
            temp = CreateTempDirectory(System.IO.Path.Combine(folder, "x"));
            Fill(temp, folder, fill);
            foreach (var name in names)
                File.Move(System.IO.Path.Combine(temp, name), System.IO.Path.Combine(folder, name), overwrite: true);
        }
        catch (Exception e) when (IsFileSystemError(e))
        {
            throw WriteError(e, folder, "the folder");
        }
        finally
        {
            if (temp is not null && Directory.Exists(temp))
                TryDelete(temp);
        }
    }

    /// <summary>
    /// Refuses, before anything is written, a path that cannot be written whatever the contents:
    /// a file where one of its folders should be, or a name longer than <see cref="MaxNameBytes"/>.
    /// </summary>
    /// <exception cref="LoraException">Naming <paramref name="path"/>.</exception>
    public static void CheckWritable(string path)
    {
        path = Normalize(path);
        foreach (var name in path.Split(System.IO.Path.DirectorySeparatorChar, System.IO.Path.AltDirectorySeparatorChar))
            if (Encoding.UTF8.GetByteCount(name) > MaxNameBytes)
                throw new LoraException(LoraErrorKind.InvalidArgument, path,
                    $"the name '{(name.Length > 40 ? name[..40] + "..." : name)}' is {Encoding.UTF8.GetByteCount(name)} bytes long; file systems take at most {MaxNameBytes}",
                    errorId: ErrorIds.PathTooLong);
        for (var parent = System.IO.Path.GetDirectoryName(path); !string.IsNullOrEmpty(parent); parent = System.IO.Path.GetDirectoryName(parent))
        {
            if (Directory.Exists(parent))
                break;
            if (File.Exists(parent))
                throw new LoraException(LoraErrorKind.InvalidArgument, path, $"'{parent}' is a file, so no folder can be created under it",
                    errorId: ErrorIds.PathIsFile);
        }
    }

    private static string Normalize(string path) =>
        System.IO.Path.GetFullPath(path.TrimEnd(System.IO.Path.DirectorySeparatorChar, System.IO.Path.AltDirectorySeparatorChar) is { Length: > 0 } p ? p : path);

    // Errors from the content's own code (a LoraException about a tensor) name the temporary path
    // they were written under; they are retargeted to the user's.
    private static void Fill(string temp, string path, Action<string> fill)
    {
        try
        {
            fill(temp);
        }
        catch (LoraException e) when (e.Target is null || e.Target.StartsWith(temp, StringComparison.Ordinal))
        {
            string target = e.Target is null ? path : path + e.Target[temp.Length..];
            throw e.Retarget(target);
        }
    }

    private static bool IsFileSystemError(Exception e) => e is IOException or UnauthorizedAccessException;

    private static LoraException WriteError(Exception e, string path, string what) => e switch
    {
        UnauthorizedAccessException => new(LoraErrorKind.PermissionDenied, path,
            $"cannot write {what}: permission denied (a read-only folder or file system, or one that takes no new files)", e, "PermissionDenied"),
        PathTooLongException => new(LoraErrorKind.InvalidArgument, path, $"cannot write {what}: the path is too long for the file system", e, ErrorIds.PathTooLong),
        DirectoryNotFoundException or FileNotFoundException => new(LoraErrorKind.WriteFailed, path,
            $"cannot write {what}: the file system has no such folder and takes no new one here (a special file system such as /proc?)", e, ErrorIds.WriteFailed),
        _ => new(LoraErrorKind.WriteFailed, path, $"cannot write {what}: {LoraException.WithoutPaths(e.Message)}", e, ErrorIds.WriteFailed),
    };

    private static (string, FileStream) CreateTempFile(string path)
    {
        for (int attempt = 0; ; attempt++)
        {
            string temp = TempSibling(path);
            try
            {
                return (temp, new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20));
            }
            catch (IOException) when (attempt < 8 && File.Exists(temp))
            {
                // Another writer's temporary file has this name: draw another.
            }
        }
    }

    private static string CreateTempDirectory(string path)
    {
        for (int attempt = 0; ; attempt++)
        {
            string temp = TempSibling(path);
            if (Directory.Exists(temp) || File.Exists(temp))
            {
                if (attempt < 8)
                    continue;
            }
            Directory.CreateDirectory(temp);
            return temp;
        }
    }

    private static string TempSibling(string path)
    {
        string parent = System.IO.Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(parent);
        return System.IO.Path.Combine(parent, $".ll-{RandomNumberGenerator.GetHexString(8, lowercase: true)}.tmp");
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (Directory.Exists(path))
                Directory.Delete(path, recursive: true);
            else if (File.Exists(path))
                File.Delete(path);
        }
        catch (Exception e) when (IsFileSystemError(e))
        {
            // Best effort: the write's own error (or success) is what the caller needs to hear.
        }
    }
}
