using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// PEFT's non-svd forms (linear, ties, dare_linear, dare_ties, magnitude_prune): the combination runs on the A's and
/// on the B's separately, each adapter's pair scaled by sqrt(weight * scaling), giving A' and B' with update B' @ A'.
/// Because the products of sums include every B_i A_j, the update has cross terms and is not sum_i weight_i dW_i.
/// </summary>
internal static class FactorwiseMerge
{
    public static MergedFactors Merge(ModuleInputs inputs, TaskCombiner combiner, Mt19937? random)
    {
        var factors = inputs.Members.Select(m => Math.Sqrt(m.Weight * m.Scaling)).ToList();
        var a = combiner.Combine(inputs.As, factors, inputs.Densities, random);
        var b = combiner.Combine(inputs.Bs, factors, inputs.Densities, random);
        return new MergedFactors(a, b);
    }
}
