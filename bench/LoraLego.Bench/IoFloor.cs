using System.Diagnostics;

namespace LoraLego.Bench;

/// <summary>
/// The least any merge must spend: read every input byte and write as many bytes as the merge's
/// output, with the same files and the same page cache, in the same run.
/// </summary>
public static class IoFloor
{
    public static double Seconds(IEnumerable<string> inputFiles, long outputBytes, string scratch)
    {
        var sw = Stopwatch.StartNew();
        var buffer = new byte[1 << 22];
        foreach (var file in inputFiles)
        {
            using var s = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            while (s.Read(buffer, 0, buffer.Length) > 0)
            {
            }
        }
        string output = Path.Combine(scratch, "floor.bin");
        using (var o = new FileStream(output, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            for (long left = outputBytes; left > 0; left -= buffer.Length)
                o.Write(buffer, 0, (int)Math.Min(buffer.Length, left));
            o.Flush(flushToDisk: true);
        }
        double seconds = sw.Elapsed.TotalSeconds;
        File.Delete(output);
        return seconds;
    }
}
