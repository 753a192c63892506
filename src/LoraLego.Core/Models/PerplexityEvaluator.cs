using System.Diagnostics;
using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>
/// Mean next-token cross-entropy and perplexity of a <see cref="BaseModel"/> (with whatever
/// adapters are attached) over rows of token ids: every token after the first of a row is
/// predicted from the ones before it, and the loss is averaged over all such tokens.
/// </summary>
public static class PerplexityEvaluator
{
    /// <summary>Scores a JSONL file of {"input_ids": [...]} or {"text": "..."} rows, streamed; text rows need a tokenizer in the model folder (tokenizer.model, or vocab.json + merges.txt).</summary>
    /// <param name="model">The model, adapters attached as they should be scored.</param>
    /// <param name="jsonlPath">One JSON object per line; blank lines are skipped.</param>
    /// <param name="options">Batch size and truncation; defaults when null.</param>
    /// <param name="progress">Called on the caller's thread after each batch and once at the end.</param>
    /// <param name="cancellationToken">Checked before each batch.</param>
    public static EvaluationResult Evaluate(BaseModel model, string jsonlPath, EvaluationOptions? options = null,
        Action<EvaluationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var reader = new JsonlTokenReader(jsonlPath, model);
        return Evaluate(model, reader.ReadRows(), () => reader.Fraction, options, progress, cancellationToken);
    }

    /// <summary>Scores rows of token ids held in memory; progress reports no fraction.</summary>
    /// <param name="model">The model, adapters attached as they should be scored.</param>
    /// <param name="rows">Token ids, one array per row, rows of any lengths.</param>
    /// <param name="options">Batch size and truncation; defaults when null.</param>
    /// <param name="progress">Called on the caller's thread after each batch and once at the end.</param>
    /// <param name="cancellationToken">Checked before each batch.</param>
    public static EvaluationResult Evaluate(BaseModel model, IEnumerable<long[]> rows, EvaluationOptions? options = null,
        Action<EvaluationProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Evaluate(model, rows, () => null, options, progress, cancellationToken);

    private static EvaluationResult Evaluate(BaseModel model, IEnumerable<long[]> rows, Func<double?> fraction,
        EvaluationOptions? options, Action<EvaluationProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new EvaluationOptions();
        if (options.BatchSize < 1)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"BatchSize must be at least 1, not {options.BatchSize}");
        if (options.MaxLength is < 2)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"MaxLength must be at least 2 to predict anything, not {options.MaxLength}");
        var clock = Stopwatch.StartNew();
        double lossSum = 0;
        long tokens = 0;
        int scoredRows = 0, skippedRows = 0;
        foreach (var batch in Batches(rows, options, () => skippedRows++))
        {
            cancellationToken.ThrowIfCancellationRequested();
            lossSum += SummedLoss(model, batch);
            tokens += batch.Sum(r => r.Length - 1L);
            scoredRows += batch.Count;
            progress?.Invoke(new EvaluationProgress(scoredRows, tokens, fraction(), clock.Elapsed));
        }
        // A last report once the input is exhausted, as trailing blank or skipped rows are read after the last batch.
        progress?.Invoke(new EvaluationProgress(scoredRows, tokens, fraction(), clock.Elapsed));
        double loss = tokens == 0 ? double.NaN : lossSum / tokens;
        return new EvaluationResult(loss, Math.Exp(loss), tokens, scoredRows, skippedRows, clock.Elapsed.TotalSeconds);
    }

    private static IEnumerable<List<long[]>> Batches(IEnumerable<long[]> rows, EvaluationOptions options, Action skipped)
    {
        var batch = new List<long[]>(options.BatchSize);
        foreach (var row in rows)
        {
            var kept = options.MaxLength is int max && row.Length > max ? row[..max] : row;
            if (kept.Length < 2)
            {
                skipped();
                continue;
            }
            batch.Add(kept);
            if (batch.Count == options.BatchSize)
            {
                yield return batch;
                batch = new List<long[]>(options.BatchSize);
            }
        }
        if (batch.Count > 0)
            yield return batch;
    }

    private static double SummedLoss(BaseModel model, List<long[]> batch)
    {
        var padded = new PaddedBatch(batch);
        using var scope = NewDisposeScope();
        var logits = model.Forward(padded.Ids());
        return padded.Loss(logits, nn.Reduction.Sum).to(ScalarType.Float64).item<double>();
    }
}
