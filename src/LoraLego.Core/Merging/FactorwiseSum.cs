using System.Buffers;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// PEFT's linear (<see cref="FactorwiseMerge"/> with a plain weighted sum) on the CPU as span loops: each factor is read
/// in its stored dtype, widened, scaled by sqrt(weight * scaling) and added into a float32 accumulator, and the sum is
/// written once in the output dtype. Per module that is two reads a factor and two small tensors, where the libtorch
/// form made a dozen calls a module, each waking libtorch's thread pool for a few hundred KiB. The bytes are libtorch's:
/// products rounded to float32, added one adapter after the other from zero in input order (what libtorch's sum over
/// the stacked adapters does below <see cref="MaxAdapters"/> + 1 of them), then rounded to the stored dtype.
/// </summary>
internal static class FactorwiseSum
{
    // libtorch's cascade_sum adds the rows of a reduction one by one only below 16 rows; from 16 on it nests partial
    // sums, whose rounding this does not reproduce, so larger merges go through libtorch.
    private const int MaxAdapters = 15;

    /// <summary>Whether this computes the module's merge: a weighted sum on the CPU, equal ranks, dtypes <see cref="FloatLanes"/> covers.</summary>
    public static bool Covers(IReadOnlyList<(MergeInput Input, LoraModule Module)> present, TaskCombiner combiner, Device device, SafetensorsDType? storeAs) =>
        combiner.IsWeightedSum && device.type == TorchSharp.DeviceType.CPU
        && present.Count is > 0 and <= MaxAdapters
        && (storeAs is not { } d || FloatLanes.Covers(d))
        && present.All(p => p.Module.Rank == present[0].Module.Rank && Readable(p.Module.A) && Readable(p.Module.B));

    // libtorch's sum runs over whole blocks of 4 vectors (32 floats with AVX2, 64 with AVX-512) adapter after adapter,
    // but over the columns past the last block in 4 interleaved partial sums; factors of whole blocks (every Llama,
    // Mistral or SDXL LoRA) leave no such columns. A span over a tensor's bytes stops at 2 GiB; no factor comes near it.
    private const int SumBlock = 64;

    private static bool Readable(LoraTensor factor) =>
        FloatLanes.Covers(factor.DType) && factor.ElementCount % SumBlock == 0 && factor.ElementCount <= int.MaxValue / sizeof(float);

    public static LoraModule Merge(string key, IReadOnlyList<(MergeInput Input, LoraModule Module)> present, SafetensorsDType? storeAs)
    {
        // PEFT makes a float32 tensor of the weights; doing the same keeps the rounding alike.
        var weights = present.Select(p => (float)Math.Sqrt(p.Input.Weight * p.Module.Scaling)).ToList();
        var output = storeAs ?? SafetensorsDType.F32;
        var first = present[0].Module;
        using var a = Sum(present.Select(p => p.Module.A).ToList(), weights, output);
        using var b = Sum(present.Select(p => p.Module.B).ToList(), weights, output);
        return LoraModule.FromFactors(key, a, b, 1.0, first.FanInFanOut, storeAs, first.Kernel);
    }

    private static Tensor Sum(IReadOnlyList<LoraTensor> factors, IReadOnlyList<float> weights, SafetensorsDType output)
    {
        int count = (int)factors[0].ElementCount;
        var accumulator = ArrayPool<float>.Shared.Rent(count);
        // One buffer for every factor's stored bytes: reading each into a fresh tensor cost page faults on new memory.
        var stored = ArrayPool<byte>.Shared.Rent(count * factors.Max(f => f.DType.ElementSize()));
        try
        {
            var sum = accumulator.AsSpan(0, count);
            sum.Clear();
            for (int i = 0; i < factors.Count; i++)
            {
                var bytes = stored.AsSpan(0, count * factors[i].DType.ElementSize());
                factors[i].CopyStored(bytes);
                FloatLanes.AddScaled(bytes, factors[i].DType, weights[i], sum);
            }
            var result = empty(factors[0].Shape, output.ToScalarType());
            FloatLanes.Store(sum, output, result.bytes);
            return result;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(stored);
            ArrayPool<float>.Shared.Return(accumulator);
        }
    }
}
