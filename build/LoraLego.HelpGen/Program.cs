using System.Management.Automation;
using System.Management.Automation.Runspaces;
using LoraLego.HelpGen;

// Generates the module's MAML help from docs/cmdlets/<Name>.md and the cmdlets' own metadata.
// usage: LoraLego.HelpGen <LoraLego.psd1> <docs/cmdlets> <output.xml>...
if (args.Length < 3)
{
    Console.Error.WriteLine("usage: LoraLego.HelpGen <manifest.psd1> <docs folder> <output.xml>...");
    return 2;
}
using var runspace = RunspaceFactory.CreateRunspace(InitialSessionState.CreateDefault2());
runspace.Open();
using var ps = PowerShell.Create();
ps.Runspace = runspace;
ps.AddScript("Import-Module $args[0] -ErrorAction Stop; Get-Command -Module LoraLego -CommandType Cmdlet").AddArgument(args[0]);
var cmdlets = ps.Invoke().Select(o => (CmdletInfo)o.BaseObject).OrderBy(c => c.Name).ToList();
if (ps.HadErrors || cmdlets.Count == 0)
{
    Console.Error.WriteLine("error: could not import the module: " + string.Join("; ", ps.Streams.Error));
    return 1;
}
var problems = new List<string>();
var docs = new List<(CmdletInfo, CmdletDoc)>();
foreach (var cmdlet in cmdlets)
{
    string file = Path.Combine(args[1], cmdlet.Name + ".md");
    if (!File.Exists(file))
    {
        problems.Add($"{cmdlet.Name}: {file} is missing");
        continue;
    }
    docs.Add((cmdlet, CmdletDoc.Parse(cmdlet.Name, File.ReadAllText(file))));
}
var maml = MamlWriter.Write(docs, problems);
foreach (var problem in problems)
    Console.Error.WriteLine($"{Path.Combine(args[1], problem.Split(':')[0] + ".md")}: error LLHELP: {problem}");
if (problems.Count > 0)
    return 1;
foreach (var output in args.Skip(2))
{
    Directory.CreateDirectory(Path.GetDirectoryName(output)!);
    maml.Save(output);
}
Console.WriteLine($"help for {docs.Count} cmdlets written to {string.Join(", ", args.Skip(2))}");
return 0;
