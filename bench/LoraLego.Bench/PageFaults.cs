namespace LoraLego.Bench;

/// <summary>Minor page faults of this process so far (the kernel's minflt in /proc/self/stat: pages first touched or
/// mapped again), 0 where there is no /proc.</summary>
public static class PageFaults
{
    public static long Minor()
    {
        if (!File.Exists("/proc/self/stat"))
            return 0;
        string stat = File.ReadAllText("/proc/self/stat");
        // The command name, in parentheses, may hold spaces; the fields after it are counted from its closing one.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[7]);
    }
}
