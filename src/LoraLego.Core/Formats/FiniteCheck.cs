using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace LoraLego.Core.Formats;

/// <summary>
/// Refuses tensors with NaN or infinite values, by name: one Inf in one adapter's lora_A makes
/// every entry of a merged A non-finite, and an SVD of it fails inside libtorch. Adapters are
/// checked as their factors are read (import reads only headers, so the check runs when a merge,
/// a split, an attach or an export first reads the weights), and writes are checked after the
/// conversion to the written dtype (a value past float16's range becomes Inf there).
/// </summary>
public static class FiniteCheck
{
    /// <summary>The error id of a non-finite weight.</summary>
    public const string ErrorId = "NonFiniteWeights";

    /// <summary>Throws a LoraException naming <paramref name="target"/> and the tensor when <paramref name="tensor"/> holds a NaN or an infinity.</summary>
    /// <param name="context">Said after the counts, e.g. "after conversion to F16".</param>
    public static void Require(Tensor tensor, string? target, string tensorName, string? context = null)
    {
        if (!tensor.is_floating_point() || tensor.numel() == 0)
            return;
        if (AllFiniteBits(tensor) ?? tensor.isfinite().all().item<bool>())
            return;
        using var scope = NewDisposeScope();
        var bad = tensor.isfinite().logical_not();
        long count = bad.sum().item<long>();
        long nan = tensor.isnan().sum().item<long>();
        var first = bad.nonzero()[0];
        var index = TensorBytes.ToArray<long>(first);
        var value = tensor[index.Select(i => TensorIndex.Single(i)).ToArray()].to_type(ScalarType.Float64).item<double>();
        string at = $"[{string.Join(", ", index)}]";
        throw new LoraException(LoraErrorKind.InvalidData, target,
            $"tensor '{tensorName}' has {count} non-finite value{(count == 1 ? "" : "s")} ({nan} NaN, {count - nan} infinite; the first, {Describe(value)}, at {at}){(context is null ? "" : " " + context)}; " +
            "a merge or an export of it would be non-finite everywhere it reaches",
            errorId: ErrorId);
    }

    // A contiguous CPU tensor is checked on its bytes: a value is non-finite exactly when its
    // exponent bits are all ones. That is one vectorised pass at memory speed, without libtorch's
    // temporaries or its thread pool (which costs far more than the scan on a busy machine, and
    // merges check every factor they read). Null for what this does not cover.
    private static bool? AllFiniteBits(Tensor tensor)
    {
        if (tensor.device_type != TorchSharp.DeviceType.CPU || !tensor.is_contiguous() || tensor.numel() * tensor.element_size() > int.MaxValue)
            return null;
        return AllFinite(tensor.bytes, tensor.dtype);
    }

    /// <summary>Whether stored values of <paramref name="dtype"/> are all finite; null for a dtype this does not scan.</summary>
    internal static bool? AllFinite(ReadOnlySpan<byte> bytes, ScalarType dtype)
    {
        return dtype switch
        {
            ScalarType.Float16 => NoneAllOnes<ushort>(bytes, 0x7C00),
            ScalarType.BFloat16 => NoneAllOnes<ushort>(bytes, 0x7F80),
            ScalarType.Float32 => NoneAllOnes<uint>(bytes, 0x7F80_0000),
            ScalarType.Float64 => NoneAllOnes<ulong>(bytes, 0x7FF0_0000_0000_0000),
            _ => null,
        };
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool NoneAllOnes<T>(ReadOnlySpan<byte> bytes, T exponent) where T : unmanaged, IBinaryInteger<T>
    {
        var values = MemoryMarshal.Cast<byte, T>(bytes);
        var mask = new Vector<T>(exponent);
        int i = 0;
        for (; i + Vector<T>.Count <= values.Length; i += Vector<T>.Count)
            if (Vector.EqualsAny(new Vector<T>(values.Slice(i)) & mask, mask))
                return false;
        for (; i < values.Length; i++)
            if ((values[i] & exponent) == exponent)
                return false;
        return true;
    }

    private static string Describe(double v) => double.IsNaN(v) ? "NaN" : double.IsPositiveInfinity(v) ? "+Inf" : "-Inf";
}
