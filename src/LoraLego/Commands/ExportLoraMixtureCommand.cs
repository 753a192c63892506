using System.Management.Automation;
using LoraLego.Core;
using LoraLego.Core.Formats;
using LoraLego.Core.Mixture;

namespace LoraLego.Commands;

[Cmdlet(VerbsData.Export, "LoraMixture", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(LoraMixture))]
public sealed class ExportLoraMixtureCommand : FolderWriterCmdlet
{
    [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true)]
    [ValidateNotNull]
    public LoraMixture Mixture { get; set; } = null!;

    protected override void ProcessRecord()
    {
        if (ResolveOutputPath(Path) is not { } folder)
            return;
        Guard(folder, () =>
        {
            AtomicFile.CheckWritable(folder);
            if (!ShouldProcess(folder, $"Export LoRA mixture '{Mixture.Name}' ({Mixture.Experts.Count} experts, {Mixture.Gates.Count} gates)"))
                return;
            WriteVerbose($"Writing {Mixture.Name} to {folder}: experts {string.Join(", ", Mixture.ExpertNames)}, {Mixture.GateParameterCount} gate parameters");
            MixtureFolder.Save(Mixture, folder, Force);
            if (PassThru)
                WriteObject(MixtureFolder.Load(folder));
        });
    }
}
