using LoraLego.Core.Surgery;
using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// PEFT's _svd forms: combine the effective updates dW_i (scaling included) with the weights weight_i, then keep the
/// best rank-k approximation of the result.
/// </summary>
internal static class SvdMerge
{
    /// <summary>
    /// Forms each dense update, so that trimming and sign election can act on its entries; a plain weighted sum
    /// goes through <see cref="Factored"/> instead unless the caller asks for the dense path.
    /// </summary>
    public static MergedFactors Dense(ModuleInputs inputs, TaskCombiner combiner, Mt19937? random, int rank, double? clamp)
    {
        using var scope = NewDisposeScope();
        var deltas = inputs.Members.Select(m => m.Delta()).ToList();
        var combined = combiner.Combine(deltas, CombinationWeights(inputs), inputs.Densities, random);
        var factors = TruncatedSvd.OfDense(combined, rank, clamp);
        return new MergedFactors(factors.A.MoveToOuterDisposeScope(), factors.B.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The same combination as <see cref="Dense"/>, built by the fused SIMD passes on the CPU (block by block in libtorch
    /// on CUDA), cut to the rank by a randomized range finder instead of the full SVD of the
    /// out x in result (subspace iteration in passes over its row blocks on the CPU), started from the untrimmed sum's
    /// leading directions (<see cref="UntrimmedStart"/>). The sketch is seeded per merge, so a merge is reproducible.
    /// </summary>
    /// <param name="threads">The CPU threads its passes share.</param>
    public static MergedFactors Randomized(ModuleInputs inputs, TaskCombiner combiner, Mt19937? random, int rank, double? clamp, CombinationWorkspace workspace,
        int threads)
    {
        using var scope = NewDisposeScope();
        var combined = FusedCombination.Covers(inputs)
            ? FusedCombination.Combine(inputs, combiner, threads, workspace, random)
            : TiledCombination.Combine(inputs, combiner, random);
        using var sketch = new Generator(SketchSeed, CPU);
        // The sketch's last GaussianColumns stay random, so that directions the untrimmed sum lacks (adapters that
        // nearly cancel there) can still be found.
        int columns = RandomizedSvd.SketchColumns(combined, rank, Oversampling);
        var start = columns > GaussianColumns ? UntrimmedStart.Of(inputs, columns - GaussianColumns, sketch, threads, workspace) : null;
        var svd = RandomizedSvd.OfRowBlocks(combined, rank, Oversampling, start is null ? PowerIterations : StartedPowerIterations, sketch, threads, start,
            workspace.Kept);
        var (a, b) = svd.Truncate((int)Math.Min(rank, svd.Values.shape[0]), combined.dtype);
        return TruncatedSvd.Finish(a, b, clamp);
    }

    /// <summary>Columns sketched beyond the rank (chosen from measured error: docs/benchmarks.md).</summary>
    internal const int Oversampling = 10;

    /// <summary>Power iterations of the range finder from a Gaussian sketch alone, where the adapters cancel in their untrimmed sum (chosen from measured error: docs/benchmarks.md).</summary>
    internal const int PowerIterations = 2;

    /// <summary>
    /// Power iterations of the range finder started from <see cref="UntrimmedStart"/>: with one, it is closer to the
    /// optimal rank-k result than two from a Gaussian sketch on every case measured (docs/benchmarks.md); with none, it
    /// was not where the disjoint mean reshapes the sum (adapters of different scales).
    /// </summary>
    internal const int StartedPowerIterations = 1;

    /// <summary>Sketch columns left Gaussian beside <see cref="UntrimmedStart"/>'s.</summary>
    internal const int GaussianColumns = 8;

    private const ulong SketchSeed = 0x5EED;

    /// <summary>The weighted sum of the updates, truncated, computed from the stacked factors alone.</summary>
    public static MergedFactors Factored(ModuleInputs inputs, int rank, double? clamp)
    {
        using var scope = NewDisposeScope();
        var weights = CombinationWeights(inputs);
        var stackedB = cat(inputs.Members.Select((m, i) => m.B.mul(weights[i] * m.Scaling)).ToList(), 1);
        var stackedA = cat(inputs.As.ToList(), 0);
        var factors = FactoredSvd.Of(stackedB, stackedA, rank, clamp);
        return new MergedFactors(factors.A.MoveToOuterDisposeScope(), factors.B.MoveToOuterDisposeScope());
    }

    private static double[] CombinationWeights(ModuleInputs inputs) => inputs.Members.Select(m => m.Weight).ToArray();
}
