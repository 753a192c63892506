using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// PEFT's cat: stacks the A's (rows, each times weight * scaling) and the B's (columns), so the update is exactly
/// sum_i weight_i dW_i and the rank is the sum of the ranks present in the module.
/// </summary>
internal static class CatMerge
{
    public static MergedFactors Merge(ModuleInputs inputs)
    {
        var a = cat(inputs.Members.Select(m => m.A.mul(m.Weight * m.Scaling)).ToList(), 0);
        var b = cat(inputs.Bs.ToList(), 1);
        return new MergedFactors(a, b);
    }
}
