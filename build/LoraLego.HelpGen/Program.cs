using System.Management.Automation;
using System.Management.Automation.Runspaces;
using LoraLego.HelpGen;

// Generates the module's MAML help from docs/cmdlets/<Name>.md and the cmdlets' own metadata, and
// puts the about_ topics of docs/about beside each help file (PowerShell finds both in <culture>/).
// usage: LoraLego.HelpGen <LoraLego.psd1> <docs/cmdlets> <docs/about> <output.xml>...
if (args.Length < 4)
{
    Console.Error.WriteLine("usage: LoraLego.HelpGen <manifest.psd1> <cmdlet docs folder> <about topics folder> <output.xml>...");
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
var abouts = Directory.GetFiles(args[2], "about_*.help.txt");
foreach (var output in args.Skip(3))
{
    string folder = Path.GetDirectoryName(output)!;
    Directory.CreateDirectory(folder);
    maml.Save(output);
    foreach (var about in abouts)
        File.Copy(about, Path.Combine(folder, Path.GetFileName(about)), overwrite: true);
}
Console.WriteLine($"help for {docs.Count} cmdlets and {abouts.Length} about topics written to {string.Join(", ", args.Skip(3))}");
return 0;
