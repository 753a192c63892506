using System.Diagnostics;
using LoraLego.Core.Compute;
using LoraLego.Core.Models;

namespace LoraLego.Core.Mixture;

/// <summary>
/// Trains a mixture's gates (MoLE): the base model and the experts stay frozen, and Adam updates
/// only the gate projections and temperatures on task loss (next-token cross-entropy over the
/// scored tokens: the answers of labelled rows, every token after the first of the others) plus
/// alpha times the balance loss, over rows drawn from the union of the domains.
/// </summary>
public static class GateTrainer
{
    /// <summary>Trains on a JSONL file of rows, as <see cref="PerplexityEvaluator"/> reads them (read whole: every epoch reuses them).</summary>
    /// <param name="model">The base model; it must have no unmerged adapters attached.</param>
    /// <param name="mixture">The mixture whose gates learn; on success they hold the trained values.</param>
    /// <param name="jsonlPath">One JSON object per line; blank lines are skipped.</param>
    /// <param name="options">Epochs, learning rate, balance weight, batch size, seed; defaults when null.</param>
    /// <param name="progress">Called on the caller's thread after every step.</param>
    /// <param name="cancellationToken">Checked before every step; a cancelled training leaves the gates as they were.</param>
    /// <returns>The summary, also set as the mixture's <see cref="LoraMixture.Training"/>: its loss history among others.</returns>
    public static MixtureTrainingSummary Train(BaseModel model, LoraMixture mixture, string jsonlPath, GateTrainingOptions? options = null,
        Action<GateTrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(jsonlPath);
        return Train(model, mixture, [jsonlPath], options, progress, cancellationToken);
    }

    /// <summary>
    /// Trains on the rows of several JSONL files together (read whole: every epoch reuses them), as
    /// users keep one file per task and the gates must learn from all tasks at once.
    /// </summary>
    /// <param name="model">The base model; it must have no unmerged adapters attached.</param>
    /// <param name="mixture">The mixture whose gates learn; on success they hold the trained values.</param>
    /// <param name="jsonlPaths">One or more files, one JSON object per line; blank lines are skipped.</param>
    /// <param name="options">Epochs, learning rate, balance weight, batch size, seed; defaults when null.</param>
    /// <param name="progress">Called on the caller's thread after every step.</param>
    /// <param name="cancellationToken">Checked before every step; a cancelled training leaves the gates as they were.</param>
    /// <returns>The summary, also set as the mixture's <see cref="LoraMixture.Training"/>: its loss history among others.</returns>
    public static MixtureTrainingSummary Train(BaseModel model, LoraMixture mixture, IReadOnlyList<string> jsonlPaths, GateTrainingOptions? options = null,
        Action<GateTrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(mixture);
        ArgumentNullException.ThrowIfNull(jsonlPaths);
        if (jsonlPaths.Count == 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, mixture.Name, "no training file given");
        var rows = jsonlPaths.SelectMany(path => new JsonlTokenReader(path, model).ReadRows()).ToList();
        return Train(model, mixture, rows, options, progress, cancellationToken);
    }

    /// <summary>Trains on rows of token ids held in memory, scoring every token after the first of each.</summary>
    /// <param name="model">The base model; it must have no unmerged adapters attached.</param>
    /// <param name="mixture">The mixture whose gates learn; on success they hold the trained values.</param>
    /// <param name="rows">Token ids, one array per row; rows shorter than two tokens predict nothing and are left out.</param>
    /// <param name="options">Epochs, learning rate, balance weight, batch size, seed; defaults when null.</param>
    /// <param name="progress">Called on the caller's thread after every step.</param>
    /// <param name="cancellationToken">Checked before every step; a cancelled training leaves the gates as they were.</param>
    /// <returns>The summary, also set as the mixture's <see cref="LoraMixture.Training"/>: its loss history among others.</returns>
    public static MixtureTrainingSummary Train(BaseModel model, LoraMixture mixture, IReadOnlyList<long[]> rows, GateTrainingOptions? options = null,
        Action<GateTrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(rows);
        return Train(model, mixture, rows.Select(r => new TokenRow(r)).ToList(), options, progress, cancellationToken);
    }

    /// <summary>Trains on rows held in memory.</summary>
    /// <param name="model">The base model; it must have no unmerged adapters attached.</param>
    /// <param name="mixture">The mixture whose gates learn; on success they hold the trained values.</param>
    /// <param name="rows">Rows with or without labels; rows with no token to score are left out.</param>
    /// <param name="options">Epochs, learning rate, balance weight, batch size, seed; defaults when null.</param>
    /// <param name="progress">Called on the caller's thread after every step.</param>
    /// <param name="cancellationToken">Checked before every step; a cancelled training leaves the gates as they were.</param>
    /// <returns>The summary, also set as the mixture's <see cref="LoraMixture.Training"/>: its loss history among others.</returns>
    public static MixtureTrainingSummary Train(BaseModel model, LoraMixture mixture, IReadOnlyList<TokenRow> rows, GateTrainingOptions? options = null,
        Action<GateTrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(mixture);
        ArgumentNullException.ThrowIfNull(rows);
        options ??= new GateTrainingOptions();
        CheckOptions(options, model, mixture);
        var usable = rows.Where(r => r.ScoredTokens > 0).ToArray();
        if (usable.Length == 0)
            throw new LoraException(LoraErrorKind.InvalidData, mixture.Name, "no training row has a token to score (two or more tokens, or a labelled position after the first)");
        int stepsPerEpoch = (usable.Length + options.BatchSize - 1) / options.BatchSize;
        int totalSteps = stepsPerEpoch * options.Epochs;
        var clock = Stopwatch.StartNew();
        var shuffler = new Random(options.Seed);
        var history = new List<double>(totalSteps);
        var epochLosses = new List<double>(options.Epochs);
        long tokens = 0;
        GateUsageAccumulator usage = new(mixture);
        using var attachment = mixture.AttachTo(model);
        using var optimizer = new GateOptimizer(attachment, options.LearningRate, options.BalanceWeight);
        for (int epoch = 1; epoch <= options.Epochs; epoch++)
        {
            shuffler.Shuffle(usable);
            usage = new GateUsageAccumulator(mixture);
            double epochSum = 0;
            int stepInEpoch = 0;
            foreach (var batch in usable.Chunk(options.BatchSize))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var (loss, taskLoss, balanceLoss) = optimizer.Step(batch, usage);
                history.Add(loss);
                epochSum += loss;
                tokens += batch.Sum(r => (long)r.Length);
                bool epochDone = ++stepInEpoch == stepsPerEpoch;
                if (epochDone)
                    epochLosses.Add(epochSum / stepsPerEpoch);
                progress?.Invoke(new GateTrainingProgress(epoch, options.Epochs, history.Count, totalSteps, loss, taskLoss, balanceLoss,
                    tokens, clock.Elapsed, epochDone ? epochSum / stepsPerEpoch : null));
            }
        }
        attachment.SaveGatesToMixture();
        var summary = new MixtureTrainingSummary(options.Epochs, totalSteps, options.LearningRate, options.BalanceWeight, options.BatchSize,
            options.Seed, usable.Length, tokens, history, epochLosses, usage.Usage());
        mixture.Training = summary;
        return summary;
    }

    private static void CheckOptions(GateTrainingOptions options, BaseModel model, LoraMixture mixture)
    {
        if (options.Epochs < 1 || options.BatchSize < 1)
            throw new LoraException(LoraErrorKind.InvalidArgument, mixture.Name, $"Epochs and BatchSize must be at least 1, not {options.Epochs} and {options.BatchSize}");
        if (!double.IsFinite(options.LearningRate) || options.LearningRate <= 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, mixture.Name, $"LearningRate must be a positive number, not {options.LearningRate}");
        if (!double.IsFinite(options.BalanceWeight) || options.BalanceWeight < 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, mixture.Name, $"BalanceWeight must be 0 or more, not {options.BalanceWeight}");
        DeviceSelector.RequireModelDevice(options.Device, model.Device, "the gates train", model.Path);
    }
}
