using System.Management.Automation;
using LoraLego.Core;
using LoraLego.Core.Models;

namespace LoraLego.Commands;

[Cmdlet(VerbsDiagnostic.Measure, "LoraModel")]
[OutputType(typeof(EvaluationResult))]
public sealed class MeasureLoraModelCommand : ModelCmdlet
{
    /// <summary>A JSONL file of {"input_ids": [...]} rows (optional aligned "labels"), {"text": "..."} or {"prompt": "...", "completion": "..."} rows tokenized with the model folder's tokenizer.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Data { get; set; } = "";

    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int BatchSize { get; set; } = new EvaluationOptions().BatchSize;

    [Parameter]
    [ValidateRange(2, int.MaxValue)]
    public int? MaxLength { get; set; }

    protected override void EndProcessing()
    {
        string path = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Data);
        try
        {
            var options = new EvaluationOptions { BatchSize = BatchSize, MaxLength = MaxLength };
            var result = WithAdapters(() => PerplexityEvaluator.Evaluate(Model, path, options, ReportProgress, Cancellation));
            WriteVerbose($"{result.Rows} rows, {result.Tokens} scored tokens ({result.SkippedRows} rows with none), loss {result.Loss:F4}, exact match {result.ExactMatch:F3}, {result.TokensPerSecond:F0} tokens/s");
            WriteObject(result);
        }
        catch (Exception ex) when (IsLoraError(ex, path, out var e))
        {
            ThrowLoraError(e, path);
        }
        catch (OperationCanceledException) when (Cancellation.IsCancellationRequested)
        {
            // Ctrl+C: the pipeline is already stopping.
        }
        finally
        {
            WriteProgress(new ProgressRecord(2, "Measure-LoraModel", "done") { RecordType = ProgressRecordType.Completed });
        }
    }

    private void ReportProgress(EvaluationProgress p) =>
        WriteProgress(new ProgressRecord(2, "Measure-LoraModel", $"{p.Rows} rows, {p.Tokens} tokens")
        {
            PercentComplete = p.Fraction is { } f ? (int)(f * 100) : -1,
        });
}
