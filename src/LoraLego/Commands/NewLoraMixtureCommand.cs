using System.Management.Automation;
using LoraLego.Core.Adapters;
using LoraLego.Core.Mixture;

namespace LoraLego.Commands;

[Cmdlet(VerbsCommon.New, "LoraMixture")]
[OutputType(typeof(LoraMixture))]
public sealed class NewLoraMixtureCommand : LoraCmdlet
{
    private readonly List<LoraAdapter> _experts = [];

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNullOrEmpty]
    public LoraAdapter[] Adapter { get; set; } = [];

    [Parameter]
    [ValidateRange(1e-6, 1e6)]
    public double Temperature { get; set; } = 1.0;

    [Parameter]
    public MixtureGranularity Granularity { get; set; } = MixtureGranularity.Model;

    [Parameter]
    public GateInput GateInput { get; set; } = GateInput.Prompt;

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = "mixture";

    // Adapters may arrive one by one through the pipeline: the mixture is built once all are in.
    protected override void ProcessRecord() => _experts.AddRange(Adapter);

    protected override void EndProcessing() =>
        Guard(Name, () =>
        {
            if (BaseModelAgreement.Disagreement(_experts.Select(e => (e.Name, e.BaseModel))) is { } disagreement)
                WriteWarning(disagreement);
            WriteObject(LoraMixture.Create(_experts, Granularity, Temperature, Name, GateInput));
        });
}
