using System.Management.Automation;
using LoraLego.Completion;
using LoraLego.Core;
using LoraLego.Core.Adapters;
using LoraLego.Core.Compute;
using LoraLego.Core.Merging;
using LoraLego.Core.Merging.Tuning;
using LoraLego.Core.Models;

namespace LoraLego.Commands;

[Cmdlet(VerbsCommon.Optimize, "LoraMerge")]
[OutputType(typeof(LoraAdapter))]
public sealed class OptimizeLoraMergeCommand : LoraCmdlet
{
    // The parameters default to Core's defaults, so the two cannot drift apart.
    private static readonly MergeSearchOptions Defaults = new();

    private readonly List<LoraAdapter> _adapters = [];

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNullOrEmpty]
    public LoraAdapter[] Adapter { get; set; } = [];

    [Parameter(Mandatory = true)]
    [ValidateNotNull]
    public BaseModel Model { get; set; } = null!;

    /// <summary>JSONL files of rows, concatenated; wildcards allowed.</summary>
    [Parameter(Mandatory = true)]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    public string[] Data { get; set; } = [];

    /// <summary>The one method to search; omitted, the search starts from the default merge and from Cat.</summary>
    [Parameter]
    public LoraMergeMethod? Method { get; set; }

    [Parameter]
    [ValidateRange(2, int.MaxValue)]
    public int Budget { get; set; } = Defaults.Budget;

    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int Epochs { get; set; } = Defaults.Epochs;

    [Parameter]
    public int Seed { get; set; } = Defaults.Seed;

    [Parameter]
    [ArgumentCompleter(typeof(ComputeDeviceCompleter))]
    public ComputeDevice Device { get; set; } = Defaults.Device;

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = Defaults.Name;

    protected override void ProcessRecord() => _adapters.AddRange(Adapter);

    protected override void EndProcessing()
    {
        var record = new ProgressRecord(1, "Optimize-LoraMerge", "starting");
        var training = new ProgressRecord(2, "Module scales", "starting") { ParentActivityId = 1 };
        try
        {
            var files = ResolveDataFiles(Data);
            var options = Defaults with
            {
                Methods = Method is { } method ? [method == LoraMergeMethod.Lego ? null : method.ToStandard()] : Defaults.Methods,
                Budget = Budget,
                Epochs = Epochs,
                Seed = Seed,
                Device = Device,
                Name = Name,
            };
            WriteVerbose($"Searching merges of {string.Join(", ", _adapters.Select(a => a.Name))} on {string.Join(", ", files)}");
            var result = MergeSearch.Run(Model, _adapters, files, options, WriteVerbose, step =>
            {
                record.StatusDescription = $"evaluation {step.Evaluation} of {Budget} ({step.Stage}): validation loss {step.ValidationLoss:F4}";
                record.PercentComplete = Math.Min(100, 100 * step.Evaluation / Budget);
                WriteProgress(record);
            }, step =>
            {
                training.StatusDescription = $"epoch {step.Epoch}/{step.Epochs}, step {step.Step}/{step.Steps}, loss {step.Loss:F4}";
                training.PercentComplete = 100 * step.Step / step.Steps;
                WriteProgress(training);
            }, Cancellation);
            Emit(result);
        }
        catch (LoraException e)
        {
            ThrowLoraError(e);
        }
        catch (OperationCanceledException) when (Cancellation.IsCancellationRequested)
        {
            // Ctrl+C before any merge was scored: there is nothing to return.
        }
        finally
        {
            record.RecordType = training.RecordType = ProgressRecordType.Completed;
            WriteProgress(training);
            WriteProgress(record);
        }
    }

    private void Emit(MergeSearchResult result)
    {
        var output = PSObject.AsPSObject(result.Adapter);
        output.Properties.Add(new PSNoteProperty("SearchHistory", result.History.ToArray()));
        output.Properties.Add(new PSNoteProperty("SearchResult", result));
        string summary = $"{result.Best.Describe()}: validation loss {result.Score.ValidationLoss:F4} (start {result.Start.ValidationLoss:F4}) after {result.History.Count} evaluations";
        if (!result.Cancelled)
        {
            WriteVerbose(summary);
            WriteObject(output);
            return;
        }
        try
        {
            WriteWarning($"stopped: returning the best merge so far, {summary}");
            WriteObject(output);
        }
        catch (PipelineStoppedException)
        {
            // PowerShell takes no output from a stopped pipeline; the host still shows what was found.
            Host.UI.WriteWarningLine($"Optimize-LoraMerge stopped; the pipeline took no output. The best merge so far was {summary}");
            throw;
        }
    }
}
