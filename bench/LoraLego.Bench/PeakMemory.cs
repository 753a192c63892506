namespace LoraLego.Bench;

/// <summary>Peak resident memory of this process, from the kernel (VmHWM), so native libtorch memory counts too.</summary>
public static class PeakMemory
{
    public static long Bytes()
    {
        if (!File.Exists("/proc/self/status"))
            return System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64;
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        return 0;
    }
}
