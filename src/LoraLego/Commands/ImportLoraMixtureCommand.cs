using System.Management.Automation;
using LoraLego.Core.Mixture;

namespace LoraLego.Commands;

[Cmdlet(VerbsData.Import, "LoraMixture")]
[OutputType(typeof(LoraMixture))]
public sealed class ImportLoraMixtureCommand : LoraCmdlet
{
    /// <summary>Mixture folders written by Export-LoraMixture; wildcards allowed.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = [];

    protected override void ProcessRecord()
    {
        foreach (var path in Path)
            Guard(path, () =>
            {
                foreach (var folder in ResolveFileSystemPaths(path, literal: false))
                    Guard(folder, () => WriteObject(MixtureFolder.Load(folder)));
            });
    }
}
