using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LoraLego.Core.Formats;

/// <summary>
/// Stored floating-point values (F16, BF16, F32) read into float32 and float32 written back, eight lanes at a time,
/// with libtorch's results: widening is exact, narrowing rounds to nearest even (F16 as c10's fp16_ieee_from_fp32_value,
/// overflow to infinity; BF16 by the rounding bias), so a span loop and a libtorch conversion give the same bytes.
/// </summary>
public static class FloatLanes
{
    // The loops are compiled optimised at once (AggressiveOptimization): a merge runs each of them a few hundred times,
    // too few for tiered compilation to replace its unoptimised first version before most of the work is done.
    private static readonly float TwoTo112 = BitConverter.UInt32BitsToSingle(0x7780_0000);
    private static readonly float TwoToMinus110 = BitConverter.UInt32BitsToSingle(0x0880_0000);

    /// <summary>The dtypes <see cref="AddScaled"/> reads and <see cref="Store"/> writes.</summary>
    public static bool Covers(SafetensorsDType dtype) => dtype is SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.F32;

    /// <summary>
    /// accumulator[i] += (float)value[i] * weight, the product rounded to float32 before the sum (no fused
    /// multiply-add, as libtorch's mul then sum). <paramref name="values"/> holds finite values only (F16's
    /// exponent-31 patterns are not widened to infinity and NaN).
    /// </summary>
    public static void AddScaled(ReadOnlySpan<byte> values, SafetensorsDType dtype, float weight, Span<float> accumulator)
    {
        switch (dtype)
        {
            case SafetensorsDType.F32:
                AddScaled(MemoryMarshal.Cast<byte, float>(values), weight, accumulator);
                break;
            case SafetensorsDType.F16:
                AddScaled16(MemoryMarshal.Cast<byte, ushort>(values), weight, accumulator, halfBits: true);
                break;
            case SafetensorsDType.BF16:
                AddScaled16(MemoryMarshal.Cast<byte, ushort>(values), weight, accumulator, halfBits: false);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a dtype FloatLanes reads");
        }
    }

    /// <summary>
    /// <paramref name="values"/> (stored as <paramref name="dtype"/>) widened to float64 into <paramref name="destination"/>:
    /// exact, as libtorch's conversion is. Finite values only, as for <see cref="AddScaled"/>.
    /// </summary>
    public static void Widen(ReadOnlySpan<byte> values, SafetensorsDType dtype, Span<double> destination)
    {
        switch (dtype)
        {
            case SafetensorsDType.F32:
                Widen(MemoryMarshal.Cast<byte, float>(values), destination);
                break;
            case SafetensorsDType.F16:
                Widen16(MemoryMarshal.Cast<byte, ushort>(values), destination, halfBits: true);
                break;
            case SafetensorsDType.BF16:
                Widen16(MemoryMarshal.Cast<byte, ushort>(values), destination, halfBits: false);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a dtype FloatLanes reads");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Widen(ReadOnlySpan<float> values, Span<double> destination)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= values.Length; i += 8)
            {
                var (low, high) = Vector256.Widen(Vector256.Create(values.Slice(i, 8)));
                low.CopyTo(destination.Slice(i, 4));
                high.CopyTo(destination.Slice(i + 4, 4));
            }
        for (; i < values.Length; i++)
            destination[i] = values[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Widen16(ReadOnlySpan<ushort> bits, Span<double> destination, bool halfBits)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i + 16 <= bits.Length; i += 16)
            {
                var (low, high) = Vector256.Widen(Vector256.Create(bits.Slice(i, 16)));
                var (w0, w1) = Vector256.Widen(Widen(low, halfBits));
                var (w2, w3) = Vector256.Widen(Widen(high, halfBits));
                w0.CopyTo(destination.Slice(i, 4));
                w1.CopyTo(destination.Slice(i + 4, 4));
                w2.CopyTo(destination.Slice(i + 8, 4));
                w3.CopyTo(destination.Slice(i + 12, 4));
            }
        for (; i < bits.Length; i++)
            destination[i] = halfBits ? (double)BitConverter.UInt16BitsToHalf(bits[i]) : BFloat16ToSingle(bits[i]);
    }

    /// <summary>Writes <paramref name="values"/> into <paramref name="destination"/> as <paramref name="dtype"/>.</summary>
    public static void Store(ReadOnlySpan<float> values, SafetensorsDType dtype, Span<byte> destination)
    {
        switch (dtype)
        {
            case SafetensorsDType.F32:
                MemoryMarshal.AsBytes(values).CopyTo(destination);
                break;
            case SafetensorsDType.F16:
                StoreHalf(values, MemoryMarshal.Cast<byte, ushort>(destination));
                break;
            case SafetensorsDType.BF16:
                StoreBFloat16(values, MemoryMarshal.Cast<byte, ushort>(destination));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a dtype FloatLanes writes");
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddScaled(ReadOnlySpan<float> values, float weight, Span<float> accumulator)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var w = Vector256.Create(weight);
            for (; i + 8 <= values.Length; i += 8)
                (Vector256.Create(accumulator.Slice(i, 8)) + Vector256.Create(values.Slice(i, 8)) * w).CopyTo(accumulator.Slice(i, 8));
        }
        for (; i < values.Length; i++)
            accumulator[i] += values[i] * weight;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddScaled16(ReadOnlySpan<ushort> bits, float weight, Span<float> accumulator, bool halfBits)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var w = Vector256.Create(weight);
            for (; i + 16 <= bits.Length; i += 16)
            {
                var (low, high) = Vector256.Widen(Vector256.Create(bits.Slice(i, 16)));
                var accLow = accumulator.Slice(i, 8);
                var accHigh = accumulator.Slice(i + 8, 8);
                (Vector256.Create(accLow) + Widen(low, halfBits) * w).CopyTo(accLow);
                (Vector256.Create(accHigh) + Widen(high, halfBits) * w).CopyTo(accHigh);
            }
        }
        for (; i < bits.Length; i++)
            accumulator[i] += (halfBits ? (float)BitConverter.UInt16BitsToHalf(bits[i]) : BFloat16ToSingle(bits[i])) * weight;
    }

    // F16: the exponent and mantissa moved into float32's fields, then scaled by 2^(127-15): exact for normal and
    // subnormal halves alike (the product is a normal float32).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen(Vector256<uint> bits, bool halfBits)
    {
        if (!halfBits)
            return (bits << 16).AsSingle();
        var sign = (bits & Vector256.Create(0x8000u)) << 16;
        var magnitude = ((bits & Vector256.Create(0x7FFFu)) << 13).AsSingle() * Vector256.Create(TwoTo112);
        return (magnitude.AsUInt32() | sign).AsSingle();
    }

    private static float BFloat16ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void StoreHalf(ReadOnlySpan<float> values, Span<ushort> bits)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i + 16 <= values.Length; i += 16)
                Vector256.Narrow(ToHalfBits(Vector256.Create(values.Slice(i, 8))), ToHalfBits(Vector256.Create(values.Slice(i + 8, 8)))).CopyTo(bits.Slice(i, 16));
        for (; i < values.Length; i++)
            bits[i] = BitConverter.HalfToUInt16Bits((Half)values[i]);
    }

    // c10's (and the FP16 library's) fp16_ieee_from_fp32_value: the float's magnitude is rounded at F16's precision by
    // adding a power of two that puts F16's last mantissa bit at float32's, so the FPU's round-to-nearest-even does it.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> ToHalfBits(Vector256<float> value)
    {
        var baseValue = Vector256.Abs(value) * Vector256.Create(TwoTo112) * Vector256.Create(TwoToMinus110);
        var w = value.AsUInt32();
        var shl1 = w + w;
        var sign = w & Vector256.Create(0x8000_0000u);
        var bias = Vector256.Max(shl1 & Vector256.Create(0xFF00_0000u), Vector256.Create(0x7100_0000u));
        var rounded = ((bias >> 1) + Vector256.Create(0x0780_0000u)).AsSingle() + baseValue;
        var r = rounded.AsUInt32();
        var nonSign = ((r >> 13) & Vector256.Create(0x7C00u)) + (r & Vector256.Create(0x0FFFu));
        var nan = Vector256.GreaterThan(shl1, Vector256.Create(0xFF00_0000u));
        return (sign >> 16) | Vector256.ConditionalSelect(nan, Vector256.Create(0x7E00u), nonSign);
    }

    private static void StoreBFloat16(ReadOnlySpan<float> values, Span<ushort> bits)
    {
        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            uint w = BitConverter.SingleToUInt32Bits(v);
            bits[i] = float.IsNaN(v) ? (ushort)0x7FC0 : (ushort)((w + 0x7FFFu + ((w >> 16) & 1)) >> 16);
        }
    }
}
