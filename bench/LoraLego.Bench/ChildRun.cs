using System.Diagnostics;
using System.Text.Json;

namespace LoraLego.Bench;

/// <summary>Runs a subcommand of this harness in a child process, so the peak memory it reports is its own.</summary>
public static class ChildRun
{
    /// <summary>The child's last line of output, read as JSON.</summary>
    public static T Json<T>(string what, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
            start.ArgumentList.Add(typeof(ChildRun).Assembly.Location);
        foreach (var a in arguments)
            start.ArgumentList.Add(a);
        using var child = Process.Start(start)!;
        string text = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        if (child.ExitCode != 0)
            throw new InvalidOperationException($"{what} failed (exit {child.ExitCode}): {text}");
        return JsonSerializer.Deserialize<T>(text.Trim().Split('\n')[^1])!;
    }
}
