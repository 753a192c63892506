using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// PEFT's merge_utils functions as one pipeline over same-shaped "task" tensors: trim each (by magnitude, by random
/// drop, or not), weight, then sum, or with sign election average the agreeing entries. task_arithmetic,
/// magnitude_prune, ties, dare_linear and dare_ties are its five settings.
/// </summary>
internal sealed class TaskCombiner(Trimming trimming, MajoritySign? election)
{
    public static TaskCombiner For(MergeRecipe recipe, MergeOptions options) =>
        new(recipe.Trimming, recipe.ElectsSign ? options.MajoritySign ?? MajoritySign.Total : null);

    public bool IsWeightedSum => trimming == Trimming.None && election is null;

    public Trimming Trimming => trimming;

    public MajoritySign? Election => election;

    /// <param name="tasks">Same-shaped tensors, one per adapter.</param>
    /// <param name="weights">One per task, applied after trimming and sign election.</param>
    /// <param name="densities">One per task: the fraction of its entries trimming keeps.</param>
    /// <param name="random">Draws the DARE drops; unused by the other trimmings.</param>
    public Tensor Combine(IReadOnlyList<Tensor> tasks, IReadOnlyList<double> weights, IReadOnlyList<double> densities, Mt19937? random)
    {
        using var scope = NewDisposeScope();
        return CombineTrimmed(tasks.Select((t, i) => Trim(t, densities[i], random)).ToList(), weights).MoveToOuterDisposeScope();
    }

    /// <summary>The weighting and the sum (or the sign election and disjoint mean) of tasks already trimmed.</summary>
    public Tensor CombineTrimmed(IReadOnlyList<Tensor> trimmed, IReadOnlyList<double> weights)
    {
        using var scope = NewDisposeScope();
        var stacked = stack(trimmed, 0);
        var shape = new long[stacked.dim()];
        Array.Fill(shape, 1L);
        shape[0] = weights.Count;
        // PEFT makes a float32 tensor of the weights; doing the same keeps the rounding alike.
        var weighted = stacked.mul(tensor(weights.Select(w => (float)w).ToArray(), device: stacked.device).view(shape));
        var combined = election is { } method
            ? SignElection.DisjointMean(weighted, SignElection.AgreementMask(stacked, method))
            : weighted.sum(dim: 0L);
        return combined.MoveToOuterDisposeScope();
    }

    private Tensor Trim(Tensor task, double density, Mt19937? random) => trimming switch
    {
        Trimming.Magnitude => MagnitudeTrim.Apply(task, density),
        Trimming.RandomDrop => RandomDrop.Apply(task, density, random ?? throw new InvalidOperationException("random drop needs a generator")),
        _ => task,
    };
}
