using System.Diagnostics;
using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>Tokens per second of a model's forward pass, with its adapters as attached.</summary>
public static class ForwardBenchmark
{
    /// <summary>Runs <paramref name="warmupIterations"/> untimed then <paramref name="iterations"/> timed forward passes on fixed pseudo-random ids.</summary>
    /// <param name="model">The model, adapters attached as they should be measured.</param>
    /// <param name="batchSize">Rows per forward pass.</param>
    /// <param name="sequenceLength">Tokens per row.</param>
    /// <param name="iterations">Timed forward passes.</param>
    /// <param name="warmupIterations">Untimed passes first, which also load the weights from their files.</param>
    /// <param name="cancellationToken">Checked before each pass.</param>
    public static ThroughputResult Measure(BaseModel model, int batchSize = 1, int sequenceLength = 128, int iterations = 5,
        int warmupIterations = 1, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (batchSize < 1 || sequenceLength < 1 || iterations < 1 || warmupIterations < 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, null,
                $"batch size, sequence length and iterations must be at least 1 and warm-up at least 0 (got {batchSize}, {sequenceLength}, {iterations}, {warmupIterations})");
        var random = new Random(0);
        var values = Enumerable.Range(0, batchSize * sequenceLength).Select(_ => (long)random.Next(model.Config.VocabSize)).ToArray();
        using var ids = tensor(values, [batchSize, sequenceLength]);
        for (int i = 0; i < warmupIterations; i++)
            RunOnce(model, ids, cancellationToken);
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < iterations; i++)
            RunOnce(model, ids, cancellationToken);
        return new ThroughputResult(batchSize, sequenceLength, iterations, clock.Elapsed.TotalSeconds);
    }

    private static void RunOnce(BaseModel model, Tensor ids, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var logits = model.Forward(ids);
        // Reading a value waits for a GPU to finish, so the clock measures the work, not its queueing.
        using var last = logits[-1, -1, -1];
        last.item<float>();
    }
}
