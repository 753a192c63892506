using System.Diagnostics;
using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>
/// Mean next-token cross-entropy, perplexity and exact match of a <see cref="BaseModel"/> (with
/// whatever adapters are attached) over rows of token ids: each scored token (every token after
/// the first, or the labelled ones of a row with labels) is predicted from the ones before it,
/// and the loss is averaged over all scored tokens.
/// </summary>
public static class PerplexityEvaluator
{
    /// <summary>Scores a JSONL file of rows, streamed: {"input_ids": [...]} with optional aligned "labels", {"text": "..."}, or {"prompt": "...", "completion": "..."}; text rows need a tokenizer in the model folder (tokenizer.model, or vocab.json + merges.txt).</summary>
    /// <param name="model">The model, adapters attached as they should be scored.</param>
    /// <param name="jsonlPath">One JSON object per line; blank lines are skipped.</param>
    /// <param name="options">Batch size and truncation; defaults when null.</param>
    /// <param name="progress">Called on the caller's thread after each batch and once at the end.</param>
    /// <param name="cancellationToken">Checked before each batch.</param>
    public static EvaluationResult Evaluate(BaseModel model, string jsonlPath, EvaluationOptions? options = null,
        Action<EvaluationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var reader = new JsonlTokenReader(jsonlPath, model);
        return Evaluate(model, reader.ReadRows(), () => reader.Fraction, reader.FullPath, options, progress, cancellationToken);
    }

    /// <summary>Scores rows held in memory; progress reports no fraction.</summary>
    /// <param name="model">The model, adapters attached as they should be scored.</param>
    /// <param name="rows">Rows of any lengths, with or without labels.</param>
    /// <param name="options">Batch size and truncation; defaults when null.</param>
    /// <param name="progress">Called on the caller's thread after each batch and once at the end.</param>
    /// <param name="cancellationToken">Checked before each batch.</param>
    public static EvaluationResult Evaluate(BaseModel model, IEnumerable<TokenRow> rows, EvaluationOptions? options = null,
        Action<EvaluationProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Evaluate(model, rows, () => null, null, options, progress, cancellationToken);

    /// <summary>Scores rows of token ids held in memory, every token after the first of each; progress reports no fraction.</summary>
    /// <param name="model">The model, adapters attached as they should be scored.</param>
    /// <param name="rows">Token ids, one array per row, rows of any lengths.</param>
    /// <param name="options">Batch size and truncation; defaults when null.</param>
    /// <param name="progress">Called on the caller's thread after each batch and once at the end.</param>
    /// <param name="cancellationToken">Checked before each batch.</param>
    public static EvaluationResult Evaluate(BaseModel model, IEnumerable<long[]> rows, EvaluationOptions? options = null,
        Action<EvaluationProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Evaluate(model, rows.Select(r => new TokenRow(r)), options, progress, cancellationToken);

    private static EvaluationResult Evaluate(BaseModel model, IEnumerable<TokenRow> rows, Func<double?> fraction, string? source,
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
        int scoredRows = 0, skippedRows = 0, exactRows = 0;
        foreach (var batch in Batches(rows, options, () => skippedRows++))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (loss, exact) = Score(model, batch);
            lossSum += loss;
            exactRows += exact;
            tokens += batch.Sum(r => (long)r.ScoredTokens);
            scoredRows += batch.Count;
            progress?.Invoke(new EvaluationProgress(scoredRows, tokens, fraction(), clock.Elapsed));
        }
        // A last report once the input is exhausted, as trailing blank or skipped rows are read after the last batch.
        progress?.Invoke(new EvaluationProgress(scoredRows, tokens, fraction(), clock.Elapsed));
        if (tokens == 0)
            throw new LoraException(LoraErrorKind.InvalidData, source,
                skippedRows == 0 ? "has no rows to score" : $"none of its {skippedRows} rows has a token to score (each needs two or more tokens, or a labelled position after the first)");
        double meanLoss = lossSum / tokens;
        return new EvaluationResult(meanLoss, Math.Exp(meanLoss), (double)exactRows / scoredRows, tokens, scoredRows, skippedRows, clock.Elapsed.TotalSeconds);
    }

    private static IEnumerable<List<TokenRow>> Batches(IEnumerable<TokenRow> rows, EvaluationOptions options, Action skipped)
    {
        var batch = new List<TokenRow>(options.BatchSize);
        foreach (var row in rows)
        {
            var kept = options.MaxLength is int max ? row.Truncate(max) : row;
            if (kept.ScoredTokens == 0)
            {
                skipped();
                continue;
            }
            batch.Add(kept);
            if (batch.Count == options.BatchSize)
            {
                yield return batch;
                batch = new List<TokenRow>(options.BatchSize);
            }
        }
        if (batch.Count > 0)
            yield return batch;
    }

    private static (double SummedLoss, int ExactRows) Score(BaseModel model, List<TokenRow> batch)
    {
        var padded = new PaddedBatch(batch);
        using var scope = NewDisposeScope();
        var logits = model.Forward(padded.Ids(), padded.PromptLengths);
        return (padded.Loss(logits, nn.Reduction.Sum).to(ScalarType.Float64).item<double>(), padded.ExactRows(logits));
    }
}
