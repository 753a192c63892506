using System.Collections.ObjectModel;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using LoraLego.Runner;

namespace LoraLego.Module.Tests.Hosting;

/// <summary>What one script run produced, stream by stream.</summary>
public sealed record ScriptResult(Collection<PSObject> Output, IReadOnlyList<ErrorRecord> Errors, IReadOnlyList<string> Warnings, IReadOnlyList<string> Verbose, string HostText)
{
    public void AssertNoErrors() =>
        Assert.True(Errors.Count == 0, "errors: " + string.Join(Environment.NewLine, Errors.Select(e => $"{e.FullyQualifiedErrorId}: {e}")));
}

/// <summary>
/// A PowerShell runspace in this process with LoraLego imported through ./LoraLego.psd1,
/// exactly as a user imports it. Creating one costs most of a second, so test classes share one.
/// </summary>
public sealed class PowerShellSession : IDisposable
{
    private readonly Runspace _runspace;

    public PowerShellSession()
    {
        Host = new ScriptHost();
        var state = InitialSessionState.CreateDefault2();
        _runspace = RunspaceFactory.CreateRunspace(Host, state);
        _runspace.Open();
        var imported = Run($"Import-Module '{ModuleManifest}' -PassThru -ErrorAction Stop");
        imported.AssertNoErrors();
        Scratch = Directory.CreateTempSubdirectory("loralego-tests-").FullName;
        Run($"$global:Scratch = '{Scratch}'; $global:Fixtures = '{Paths.Fixtures}'; $global:RepoRoot = '{Paths.Root}'").AssertNoErrors();
    }

    public ScriptHost Host { get; }

    /// <summary>A temporary folder for this session's outputs.</summary>
    public string Scratch { get; }

    public static string ModuleManifest => Path.Combine(Paths.Root, "LoraLego.psd1");

    public ScriptResult Run(string script, IDictionary<string, object?>? variables = null)
    {
        Host.Clear();
        using var ps = PowerShell.Create();
        ps.Runspace = _runspace;
        if (variables is not null)
            foreach (var (name, value) in variables)
                _runspace.SessionStateProxy.SetVariable(name, value);
        ps.AddScript(script);
        Collection<PSObject> output;
        try
        {
            output = ps.Invoke();
        }
        catch (RuntimeException e)
        {
            return new ScriptResult([], [.. ps.Streams.Error, e.ErrorRecord], Warnings(ps), VerboseOf(ps), Host.Text);
        }
        return new ScriptResult(output, ps.Streams.Error.ToList(), Warnings(ps), VerboseOf(ps), Host.Text);
    }

    /// <summary>
    /// Starts the script, stops it (as Ctrl+C does) after <paramref name="after"/>, and returns how long
    /// the stop took; fails if the script ended before it could be stopped.
    /// </summary>
    public TimeSpan RunAndStop(string script, TimeSpan after, IDictionary<string, object?>? variables = null)
    {
        using var ps = PowerShell.Create();
        ps.Runspace = _runspace;
        if (variables is not null)
            foreach (var (name, value) in variables)
                _runspace.SessionStateProxy.SetVariable(name, value);
        ps.AddScript(script);
        var running = ps.BeginInvoke();
        Thread.Sleep(after);
        Assert.False(running.IsCompleted, "the script ended before it could be stopped; give it more work");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        ps.Stop();
        return watch.Elapsed;
    }

    /// <summary>Runs the script and renders its output through Out-Default (the module's format views).</summary>
    public string Render(string script)
    {
        var result = Run($"{script} | Out-Default");
        result.AssertNoErrors();
        return result.HostText;
    }

    private static List<string> Warnings(PowerShell ps) => ps.Streams.Warning.Select(w => w.Message).ToList();

    private static List<string> VerboseOf(PowerShell ps) => ps.Streams.Verbose.Select(w => w.Message).ToList();

    public void Dispose()
    {
        _runspace.Dispose();
        try
        {
            Directory.Delete(Scratch, recursive: true);
        }
        catch (IOException)
        {
            // A mapped file can still be open in this process; the OS cleans the temp folder.
        }
    }
}
