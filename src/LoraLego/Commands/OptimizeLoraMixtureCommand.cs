using System.Management.Automation;
using LoraLego.Completion;
using LoraLego.Core.Compute;
using LoraLego.Core.Mixture;
using LoraLego.Core.Models;

namespace LoraLego.Commands;

[Cmdlet(VerbsCommon.Optimize, "LoraMixture")]
[OutputType(typeof(LoraMixture))]
public sealed class OptimizeLoraMixtureCommand : LoraCmdlet
{
    // The parameters default to Core's defaults, so the two cannot drift apart.
    private static readonly GateTrainingOptions Defaults = new();

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public LoraMixture Mixture { get; set; } = null!;

    [Parameter(Mandatory = true)]
    [ValidateNotNull]
    public BaseModel Model { get; set; } = null!;

    /// <summary>JSONL files of rows, wildcards allowed: the gates train on all their rows together.</summary>
    [Parameter(Mandatory = true)]
    [ValidateNotNullOrEmpty]
    public string[] Data { get; set; } = [];

    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int Epochs { get; set; } = Defaults.Epochs;

    [Parameter]
    public double LearningRate { get; set; } = Defaults.LearningRate;

    [Parameter]
    public double BalanceWeight { get; set; } = Defaults.BalanceWeight;

    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int BatchSize { get; set; } = Defaults.BatchSize;

    [Parameter]
    public int Seed { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(ComputeDeviceCompleter))]
    public ComputeDevice Device { get; set; } = Defaults.Device;

    protected override void ProcessRecord()
    {
        var options = new GateTrainingOptions
        {
            Epochs = Epochs, LearningRate = LearningRate, BalanceWeight = BalanceWeight, BatchSize = BatchSize, Seed = Seed, Device = Device,
        };
        var record = new ProgressRecord(1, $"Training the gates of {Mixture.Name}", "starting");
        try
        {
            Guard(Mixture.Name, () =>
            {
                var data = ResolveDataFiles(Data);
                GateTrainer.Train(Model, Mixture, data, options, p =>
                {
                    record.StatusDescription = $"epoch {p.Epoch}/{p.Epochs}, step {p.Step}/{p.TotalSteps}, loss {p.Loss:F4} (task {p.TaskLoss:F4}, balance {p.BalanceLoss:F4})";
                    record.PercentComplete = (int)(100L * p.Step / p.TotalSteps);
                    WriteProgress(record);
                    if (p.EpochLoss is { } epochLoss)
                        WriteVerbose($"epoch {p.Epoch}/{p.Epochs}: mean loss {epochLoss:F4} ({p.Tokens} tokens, {p.Elapsed.TotalSeconds:F1} s)");
                }, Cancellation);
                WriteObject(Mixture);
            });
        }
        catch (OperationCanceledException) when (Cancellation.IsCancellationRequested)
        {
            // Ctrl+C: the gates keep their previous values; PowerShell reports the stop itself.
        }
        finally
        {
            record.RecordType = ProgressRecordType.Completed;
            WriteProgress(record);
        }
    }
}
