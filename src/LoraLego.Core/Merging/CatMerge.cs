using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// PEFT's cat: stacks the A's (rows, each times weight * scaling) and the B's (columns), so the update is exactly
/// sum_i weight_i dW_i and the rank is the sum of the ranks present in the module.
/// </summary>
/// <remarks>
/// The result is deferred: its factors are concatenated from the inputs' files each time they are read, so a Cat
/// merge holds no output in memory and an export streams it module by module (8 adapters of a 70B model give
/// a 3 GiB result, which would otherwise sit in memory until written).
/// </remarks>
internal static class CatMerge
{
    public static LoraModule Deferred(string key, IReadOnlyList<MergeInput> inputs, SafetensorsDType? storeAs)
    {
        var members = inputs.Select(i => (Input: i, Module: i.Adapter.GetModule(key))).Where(p => p.Module is not null).ToList();
        var first = members[0].Module!;
        long rank = members.Sum(p => (long)p.Module!.Rank);
        var dtype = storeAs ?? SafetensorsDType.F32;
        var a = LoraTensor.Deferred($"{key}.lora_A.weight", dtype, [rank, first.InFeatures], () =>
            Concatenate(members.Select(p => Weighted(p.Module!.A, p.Input.Weight * p.Module.Scaling)), 0, dtype));
        var b = LoraTensor.Deferred($"{key}.lora_B.weight", dtype, [first.OutFeatures, rank], () =>
            Concatenate(members.Select(p => p.Module!.B.LoadFloat32()), 1, dtype));
        return new LoraModule(key, (int)rank, rank, false, a, b, first.FanInFanOut) { Kernel = first.Kernel };
    }

    private static Tensor Weighted(LoraTensor factor, double weight)
    {
        using var w = weight.ToScalar();
        return factor.LoadFloat32().mul_(w);
    }

    private static Tensor Concatenate(IEnumerable<Tensor> parts, long dim, SafetensorsDType dtype)
    {
        using var scope = NewDisposeScope();
        return cat(parts.ToList(), dim).to_type(dtype.ToScalarType()).MoveToOuterDisposeScope();
    }
}
