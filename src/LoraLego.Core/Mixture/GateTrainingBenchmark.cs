using System.Diagnostics;
using LoraLego.Core.Models;

namespace LoraLego.Core.Mixture;

/// <summary>Steps and tokens per second of gate training, for benchmarks. The mixture's gates are left as they were.</summary>
public static class GateTrainingBenchmark
{
    /// <summary>Runs <paramref name="warmupSteps"/> untimed then <paramref name="steps"/> timed training steps on fixed pseudo-random ids.</summary>
    /// <param name="model">The base model; it must have no unmerged adapters attached.</param>
    /// <param name="mixture">The mixture whose gates would train; its stored gates do not change.</param>
    /// <param name="batchSize">Rows per step.</param>
    /// <param name="sequenceLength">Tokens per row.</param>
    /// <param name="steps">Timed steps.</param>
    /// <param name="warmupSteps">Untimed steps first, which also load the weights from their files.</param>
    /// <param name="options">Learning rate and balance weight of the steps; the rest is not used.</param>
    /// <param name="cancellationToken">Checked before each step.</param>
    public static GateTrainingThroughput Measure(BaseModel model, LoraMixture mixture, int batchSize = 8, int sequenceLength = 128, int steps = 5,
        int warmupSteps = 1, GateTrainingOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(mixture);
        if (batchSize < 1 || sequenceLength < 2 || steps < 1 || warmupSteps < 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, mixture.Name,
                $"batch size and steps must be at least 1, sequence length at least 2 and warm-up at least 0 (got {batchSize}, {sequenceLength}, {steps}, {warmupSteps})");
        options ??= new GateTrainingOptions();
        var random = new Random(0);
        var rows = Enumerable.Range(0, batchSize)
            .Select(_ => new TokenRow(Enumerable.Range(0, sequenceLength).Select(_ => (long)random.Next(model.Config.VocabSize)).ToArray()))
            .ToArray();
        using var attachment = mixture.AttachTo(model);
        using var optimizer = new GateOptimizer(attachment, options.LearningRate, options.BalanceWeight);
        for (int i = 0; i < warmupSteps; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            optimizer.Step(rows);
        }
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            optimizer.Step(rows);
        }
        return new GateTrainingThroughput(batchSize, sequenceLength, steps, clock.Elapsed.TotalSeconds);
    }
}
