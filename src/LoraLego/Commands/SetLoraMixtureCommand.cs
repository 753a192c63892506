using System.Management.Automation;
using LoraLego.Completion;
using LoraLego.Core.Mixture;

namespace LoraLego.Commands;

[Cmdlet(VerbsCommon.Set, "LoraMixture", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(LoraMixture))]
public sealed class SetLoraMixtureCommand : LoraCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public LoraMixture Mixture { get; set; } = null!;

    /// <summary>Experts to mask out: their gate values become 0 and the others renormalise.</summary>
    [Parameter]
    [ArgumentCompleter(typeof(ExpertNameCompleter))]
    public string[] Disable { get; set; } = [];

    /// <summary>Experts to take back in; applied before -Disable.</summary>
    [Parameter]
    [ArgumentCompleter(typeof(ExpertNameCompleter))]
    public string[] Enable { get; set; } = [];

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        Guard(Mixture.Name, () =>
        {
            if (Enable.Length > 0 && ShouldProcess(Mixture.Name, $"Enable experts {string.Join(", ", Enable)}"))
                Mixture.Enable(Enable);
            if (Disable.Length > 0 && ShouldProcess(Mixture.Name, $"Disable experts {string.Join(", ", Disable)}"))
                Mixture.Disable(Disable);
            if (PassThru)
                WriteObject(Mixture);
        });
    }
}
