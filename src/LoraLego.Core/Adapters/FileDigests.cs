using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace LoraLego.Core.Adapters;

/// <summary>
/// The SHA-256 of input files, computed in the background and remembered by path, length and write time: a merge
/// starts hashing its inputs when it begins and takes the digests when it writes its provenance at the end, so the
/// hashing runs beside the merge instead of after it, and a file merged again is not read again.
/// </summary>
internal static class FileDigests
{
    private static readonly ConcurrentDictionary<FileVersion, Task<string>> Digests = new();
    private static readonly object LaneLock = new();
    private static Task _lane = Task.CompletedTask;

    private readonly record struct FileVersion(string Path, long Length, DateTime WriteTime)
    {
        public static FileVersion Of(string path)
        {
            var info = new FileInfo(path);
            return new(info.FullName, info.Length, info.LastWriteTimeUtc);
        }
    }

    /// <summary>Starts hashing <paramref name="path"/> unless its current version is hashed or being hashed.</summary>
    public static void Begin(string path) => _ = Digest(path);

    /// <summary>The lowercase hex SHA-256 of <paramref name="path"/> as it is now; waits for a hash begun earlier.</summary>
    public static string Sha256(string path) => Digest(path).GetAwaiter().GetResult();

    private static Task<string> Digest(string path)
    {
        var version = FileVersion.Of(path);
        return Digests.GetOrAdd(version, v => Queue(() => Hash(v)));
    }

    // One file at a time, on a thread of its own: the hashing takes at most one core beside a merge and leaves the
    // thread pool to the merge's parallel loops (eight files hashed as pool tasks kept a 2-core pool busy, and a
    // parallel Gram matrix then ran on one thread).
    private static Task<string> Queue(Func<string> hash)
    {
        lock (LaneLock)
        {
            var next = _lane.ContinueWith(_ => hash(), CancellationToken.None, TaskContinuationOptions.LongRunning, TaskScheduler.Default);
            _lane = next;
            return next;
        }
    }

    private static string Hash(FileVersion version)
    {
        try
        {
            string digest;
            using (var stream = File.OpenRead(version.Path))
                digest = Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
            // A file rewritten while it was read has bytes of both versions: forget the digest so the next ask reads again.
            if (FileVersion.Of(version.Path) != version)
                Digests.TryRemove(version, out _);
            return digest;
        }
        catch
        {
            Digests.TryRemove(version, out _);
            throw;
        }
    }
}
