using System.Buffers;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// PEFT's linear (<see cref="FactorwiseMerge"/> with a plain weighted sum) on the CPU as span loops: each adapter's A
/// and B are read in their stored dtype into one buffer, then each factor's weighted sum over the adapters is computed
/// in registers (<see cref="FloatLanes.WeightedSum"/>) straight into the merged module's tensor, which the module keeps
/// without a copy. Per module that is one read per adapter and two tensors, where the libtorch form made a dozen calls
/// a module, each waking libtorch's thread pool for a few hundred KiB. The bytes are libtorch's: products rounded to
/// float32, added one adapter after the other from zero in input order (what libtorch's sum over the stacked adapters
/// does below <see cref="MaxAdapters"/> + 1 of them), then rounded to the stored dtype.
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
        && present.All(p => p.Module.Rank == present[0].Module.Rank && Readable(p.Module.A) && Readable(p.Module.B))
        && present.Sum(p => StoredBytes(p.Module)) <= Array.MaxLength;

    // libtorch's sum runs over whole blocks of 4 vectors (32 floats with AVX2, 64 with AVX-512) adapter after adapter,
    // but over the columns past the last block in 4 interleaved partial sums; factors of whole blocks (every Llama,
    // Mistral or SDXL LoRA) leave no such columns. A span over a tensor's bytes stops at 2 GiB; no factor comes near it.
    private const int SumBlock = 64;

    private static bool Readable(LoraTensor factor) =>
        FloatLanes.Covers(factor.DType) && factor.ElementCount % SumBlock == 0 && factor.ElementCount <= int.MaxValue / sizeof(float);

    private static long StoredBytes(LoraModule module) => module.A.ByteLength + module.B.ByteLength;

    public static LoraModule Merge(string key, IReadOnlyList<(MergeInput Input, LoraModule Module)> present, SafetensorsDType? storeAs)
    {
        var output = storeAs ?? SafetensorsDType.F32;
        var first = present[0].Module;
        // One buffer for every adapter's stored bytes, A then B as files store a module's factors, so that one read
        // takes both; reading each into a fresh tensor cost page faults on new memory.
        var stored = ArrayPool<byte>.Shared.Rent(checked((int)present.Sum(p => StoredBytes(p.Module))));
        try
        {
            var aTerms = new FloatLanes.Term[present.Count];
            var bTerms = new FloatLanes.Term[present.Count];
            int at = 0;
            for (int i = 0; i < present.Count; i++)
            {
                var module = present[i].Module;
                // PEFT makes a float32 tensor of the weights; doing the same keeps the rounding alike.
                float weight = (float)Math.Sqrt(present[i].Input.Weight * module.Scaling);
                int aBytes = (int)module.A.ByteLength;
                int bytes = (int)StoredBytes(module);
                LoraTensor.CopyStored([module.A, module.B], stored.AsSpan(at, bytes));
                aTerms[i] = new FloatLanes.Term(at, module.A.DType, weight);
                bTerms[i] = new FloatLanes.Term(at + aBytes, module.B.DType, weight);
                at += bytes;
            }
            var a = Sum(stored, aTerms, first.A.Shape, output);
            var b = Sum(stored, bTerms, first.B.Shape, output);
            return LoraModule.Adopt(key, a, b, 1.0, first.FanInFanOut, first.Kernel);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(stored);
        }
    }

    private static Tensor Sum(byte[] stored, FloatLanes.Term[] terms, long[] shape, SafetensorsDType output)
    {
        var result = empty(shape, output.ToScalarType());
        FloatLanes.WeightedSum(stored, terms, (int)result.numel(), output, result.bytes);
        return result;
    }
}
