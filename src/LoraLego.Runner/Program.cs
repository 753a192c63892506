using System.Management.Automation;
using System.Management.Automation.Runspaces;
using LoraLego.Runner;

// Runs a PowerShell script with LoraLego imported, for machines without pwsh: the engine comes
// from the System.Management.Automation package, output is rendered through the module's
// format views. Exit code 1 when the script reported errors.
if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.WriteLine("usage: loralego-run <script.ps1> [arguments...]");
    return 2;
}
string root = AppContext.BaseDirectory;
while (!File.Exists(Path.Combine(root, "LoraLego.psd1")))
    root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("LoraLego.psd1 not found above " + AppContext.BaseDirectory);

var host = new ScriptHost(Console.Out);
using var runspace = RunspaceFactory.CreateRunspace(host, InitialSessionState.CreateDefault2());
runspace.Open();
using var ps = PowerShell.Create();
ps.Runspace = runspace;
// Arguments are handed to the script as pwsh would parse them: -Name stays a parameter name,
// everything else is a quoted literal.
string Quote(string a) => System.Text.RegularExpressions.Regex.IsMatch(a, "^-[A-Za-z][A-Za-z0-9]*:?$") ? a : "'" + a.Replace("'", "''") + "'";
ps.AddScript($"Import-Module {Quote(Path.Combine(root, "LoraLego.psd1"))} -ErrorAction Stop; & {Quote(Path.GetFullPath(args[0]))} {string.Join(" ", args.Skip(1).Select(Quote))} | Out-Default");
try
{
    ps.Invoke();
}
catch (RuntimeException e)
{
    Console.Error.WriteLine(e.ErrorRecord);
    return 1;
}
foreach (var error in ps.Streams.Error)
    Console.Error.WriteLine($"{error.FullyQualifiedErrorId}: {error}");
return ps.Streams.Error.Count == 0 && !ps.HadErrors ? 0 : 1;
