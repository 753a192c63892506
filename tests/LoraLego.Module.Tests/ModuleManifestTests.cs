using System.Management.Automation;
using LoraLego.Module.Tests.Hosting;

namespace LoraLego.Module.Tests;

[Collection(SessionCollection.Name)]
public class ModuleManifestTests(PowerShellSession ps)
{
    private static readonly string[] Cmdlets = ["Import-Lora", "Export-Lora", "Split-Msu", "Join-Msu", "Invoke-RankCluster", "Merge-Lora",
        "Import-BaseModel", "Mount-Lora", "Dismount-Lora", "Invoke-BaseModel", "Measure-LoraModel",
        "New-LoraMixture", "Optimize-LoraMixture", "Set-LoraMixture", "Export-LoraMixture", "Import-LoraMixture", "Get-LoraMixtureGate"];

    [Fact]
    public void Manifest_is_valid_and_exports_the_cmdlets()
    {
        var result = ps.Run($"Test-ModuleManifest '{PowerShellSession.ModuleManifest}'");
        result.AssertNoErrors();
        var exported = ps.Run("(Get-Command -Module LoraLego).Name").Output.Select(o => o.ToString()).ToHashSet();
        foreach (var c in Cmdlets)
            Assert.Contains(c, exported);
    }

    [Fact]
    public void Every_cmdlet_has_help_with_synopsis_example_and_every_parameter()
    {
        var names = ps.Run("(Get-Command -Module LoraLego).Name").Output.Select(o => o.ToString()).ToList();
        Assert.NotEmpty(names);
        foreach (var name in names)
        {
            var help = ps.Run($"Get-Help {name} -Full").Output.Single();
            string synopsis = help.Properties["Synopsis"].Value?.ToString()?.Trim() ?? "";
            Assert.False(string.IsNullOrEmpty(synopsis) || synopsis.StartsWith(name + " ", StringComparison.Ordinal) && synopsis.Contains('['),
                $"{name} has no written synopsis (PowerShell made one from the syntax: '{synopsis}')");
            var examples = ps.Run($"(Get-Help {name} -Examples).examples.example").Output;
            Assert.True(examples.Count > 0, $"{name} has no example");
            var documented = ps.Run($"(Get-Help {name} -Full).parameters.parameter.ForEach{{ $_.name }}").Output.Select(o => o.ToString()).ToHashSet();
            var declared = ps.Run($"(Get-Command {name}).Parameters.Keys.Where{{ $_ -notin [System.Management.Automation.PSCmdlet]::CommonParameters }}").Output.Select(o => o.ToString());
            foreach (var p in declared)
                Assert.True(documented.Contains(p), $"{name} -{p} has no help");
        }
    }

    [Fact]
    public void Help_examples_are_shown()
    {
        var text = ps.Run("Get-Help Import-Lora -Examples | Out-String").Output;
        var examples = ps.Run("(Get-Help Import-Lora -Examples).examples.example.code").Output.Select(o => o.ToString()).ToList();
        Assert.Contains(examples, e => e.Contains("Import-Lora ./adapters/math"));
    }
}
