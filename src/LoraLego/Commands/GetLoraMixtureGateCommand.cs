using System.Management.Automation;
using LoraLego.Core.Mixture;
using LoraLego.Core.Models;

namespace LoraLego.Commands;

[Cmdlet(VerbsCommon.Get, "LoraMixtureGate", DefaultParameterSetName = StoredSet)]
[OutputType(typeof(GateUsage), ParameterSetName = [StoredSet])]
[OutputType(typeof(GateMeasurement), ParameterSetName = [MeasuredSet])]
public sealed class GetLoraMixtureGateCommand : LoraCmdlet
{
    private const string StoredSet = "Stored";
    private const string MeasuredSet = "Measured";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public LoraMixture Mixture { get; set; } = null!;

    [Parameter(Mandatory = true, ParameterSetName = MeasuredSet)]
    [ValidateNotNull]
    public BaseModel Model { get; set; } = null!;

    /// <summary>JSONL files of rows to measure the gates on, wildcards allowed: one measurement per file.</summary>
    [Parameter(Mandatory = true, ParameterSetName = MeasuredSet)]
    [ValidateNotNullOrEmpty]
    public string[] Data { get; set; } = [];

    [Parameter(ParameterSetName = MeasuredSet)]
    [ValidateRange(1, int.MaxValue)]
    public int BatchSize { get; set; } = 8;

    protected override void ProcessRecord()
    {
        Guard(Mixture.Name, () =>
        {
            if (ParameterSetName == MeasuredSet)
            {
                foreach (var path in ResolveDataFiles(Data))
                    WriteObject(GateMeter.Measure(Model, Mixture, path, BatchSize));
                return;
            }
            if (Mixture.Training is null)
                WriteVerbose($"{Mixture.Name} is untrained: its gates are uniform whatever the input");
            WriteObject(Mixture.GateUsage(), enumerateCollection: true);
        });
    }
}
