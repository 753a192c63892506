using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LoraLego.Core.Formats;

/// <summary>
/// Stored floating-point values (F16, BF16, F32) read into float32 and float32 written back, sixteen lanes at a time,
/// with libtorch's results: widening is exact, narrowing rounds to nearest even (F16 as c10's fp16_ieee_from_fp32_value,
/// overflow to infinity; BF16 by the rounding bias), so a span loop and a libtorch conversion give the same bytes.
/// </summary>
public static class FloatLanes
{
    // The loops are compiled optimised at once (AggressiveOptimization): a merge runs each of them a few hundred times,
    // too few for tiered compilation to replace its unoptimised first version before most of the work is done.
    private static readonly float TwoTo112 = BitConverter.UInt32BitsToSingle(0x7780_0000);
    private static readonly float TwoToMinus110 = BitConverter.UInt32BitsToSingle(0x0880_0000);

    /// <summary>The dtypes <see cref="WeightedSum"/> reads and writes.</summary>
    public static bool Covers(SafetensorsDType dtype) => dtype is SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.F32;

    /// <summary>One input of <see cref="WeightedSum"/>: where its stored values begin in the buffer, their dtype, its weight.</summary>
    public readonly record struct Term(int Offset, SafetensorsDType DType, float Weight);

    /// <summary>
    /// destination[i] = the sum over <paramref name="terms"/> of (float)value[i] * weight, stored as <paramref name="output"/>:
    /// each product rounded to float32 (no fused multiply-add, as libtorch's mul then sum), added term after term from
    /// zero, and the sum rounded once. Every term's <paramref name="count"/> values are summed in registers, 16 lanes at
    /// a time, and the result is written once: no float32 accumulator goes back and forth through memory per term.
    /// The stored values are finite (F16's exponent-31 patterns are not widened to infinity and NaN).
    /// </summary>
    public static void WeightedSum(ReadOnlySpan<byte> stored, ReadOnlySpan<Term> terms, int count, SafetensorsDType output, Span<byte> destination)
    {
        foreach (var t in terms)
        {
            if (!Covers(t.DType))
                throw new ArgumentOutOfRangeException(nameof(terms), t.DType, "not a dtype FloatLanes reads");
            if (t.Offset < 0 || (long)t.Offset + (long)count * t.DType.ElementSize() > stored.Length)
                throw new ArgumentOutOfRangeException(nameof(terms), t.Offset, "a term's values end past the stored bytes");
        }
        if (!Covers(output))
            throw new ArgumentOutOfRangeException(nameof(output), output, "not a dtype FloatLanes writes");
        if ((long)count * output.ElementSize() > destination.Length)
            throw new ArgumentOutOfRangeException(nameof(destination), "the destination is shorter than the sum");
        int i = Vector256.IsHardwareAccelerated ? SumLanes(stored, terms, count, output, destination) : 0;
        for (; i < count; i++)
        {
            float sum = 0;
            foreach (var t in terms)
                sum += Value(stored, t, i) * t.Weight;
            Store(sum, output, destination, i);
        }
    }

    /// <summary>
    /// float32 <paramref name="values"/> rounded to <paramref name="output"/> (F16, BF16 or F32) into <paramref name="destination"/>,
    /// as libtorch's conversion rounds them (F16 past its range becomes infinity; NaN stays NaN).
    /// </summary>
    public static void Narrow(ReadOnlySpan<float> values, SafetensorsDType output, Span<byte> destination)
    {
        if (!Covers(output))
            throw new ArgumentOutOfRangeException(nameof(output), output, "not a dtype FloatLanes writes");
        if ((long)values.Length * output.ElementSize() > destination.Length)
            throw new ArgumentOutOfRangeException(nameof(destination), "the destination is shorter than the values");
        int i = Vector256.IsHardwareAccelerated ? NarrowLanes(values, output, destination) : 0;
        for (; i < values.Length; i++)
            Store(values[i], output, destination, i);
    }

    // Returns how many values it rounded: whole groups of 16.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int NarrowLanes(ReadOnlySpan<float> values, SafetensorsDType output, Span<byte> destination)
    {
        ref float source = ref MemoryMarshal.GetReference(values);
        ref byte target = ref MemoryMarshal.GetReference(destination);
        int i = 0;
        for (; i + 16 <= values.Length; i += 16)
            Store16(Vector256.LoadUnsafe(ref source, (nuint)i), Vector256.LoadUnsafe(ref source, (nuint)(i + 8)), output, ref target, i);
        return i;
    }

    /// <summary>
    /// <paramref name="values"/> (stored as <paramref name="dtype"/>) read into float32 in <paramref name="destination"/>:
    /// exact, as libtorch's conversion is. Finite values only, as for <see cref="WeightedSum"/>.
    /// </summary>
    public static void Widen(ReadOnlySpan<byte> values, SafetensorsDType dtype, Span<float> destination)
    {
        if (!Covers(dtype))
            throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a dtype FloatLanes reads");
        int count = values.Length / dtype.ElementSize();
        if (count > destination.Length)
            throw new ArgumentOutOfRangeException(nameof(destination), "the destination is shorter than the values");
        int i = Vector256.IsHardwareAccelerated ? WidenLanes(values, dtype, destination[..count]) : 0;
        for (; i < count; i++)
            destination[i] = Value(values, new Term(0, dtype, 1), i);
    }

    // Returns how many values it read: whole groups of 16.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int WidenLanes(ReadOnlySpan<byte> values, SafetensorsDType dtype, Span<float> destination)
    {
        ref byte source = ref MemoryMarshal.GetReference(values);
        ref float target = ref MemoryMarshal.GetReference(destination);
        int i = 0;
        for (; i + 16 <= destination.Length; i += 16)
        {
            var (low, high) = Load16(ref source, i, dtype);
            low.StoreUnsafe(ref target, (nuint)i);
            high.StoreUnsafe(ref target, (nuint)(i + 8));
        }
        return i;
    }

    private static float BFloat16ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    // Returns how many values it summed: whole groups of 16.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int SumLanes(ReadOnlySpan<byte> stored, ReadOnlySpan<Term> terms, int count, SafetensorsDType output, Span<byte> destination)
    {
        ref byte source = ref MemoryMarshal.GetReference(stored);
        ref byte target = ref MemoryMarshal.GetReference(destination);
        int i = 0;
        for (; i + 16 <= count; i += 16)
        {
            var low = Vector256<float>.Zero;
            var high = Vector256<float>.Zero;
            foreach (var t in terms)
            {
                var (l, h) = Load16(ref Unsafe.Add(ref source, t.Offset), i, t.DType);
                var w = Vector256.Create(t.Weight);
                low += l * w;
                high += h * w;
            }
            Store16(low, high, output, ref target, i);
        }
        return i;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float>, Vector256<float>) Load16(ref byte values, int i, SafetensorsDType dtype)
    {
        if (dtype == SafetensorsDType.F32)
        {
            ref float floats = ref Unsafe.As<byte, float>(ref values);
            return (Vector256.LoadUnsafe(ref floats, (nuint)i), Vector256.LoadUnsafe(ref floats, (nuint)(i + 8)));
        }
        var (low, high) = Vector256.Widen(Vector256.LoadUnsafe(ref Unsafe.As<byte, ushort>(ref values), (nuint)i));
        bool halfBits = dtype == SafetensorsDType.F16;
        return (Widen(low, halfBits), Widen(high, halfBits));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store16(Vector256<float> low, Vector256<float> high, SafetensorsDType output, ref byte destination, int i)
    {
        switch (output)
        {
            case SafetensorsDType.F32:
                ref float floats = ref Unsafe.As<byte, float>(ref destination);
                low.StoreUnsafe(ref floats, (nuint)i);
                high.StoreUnsafe(ref floats, (nuint)(i + 8));
                break;
            case SafetensorsDType.F16:
                Vector256.Narrow(ToHalfBits(low), ToHalfBits(high)).StoreUnsafe(ref Unsafe.As<byte, ushort>(ref destination), (nuint)i);
                break;
            default:
                Vector256.Narrow(ToBFloat16Bits(low), ToBFloat16Bits(high)).StoreUnsafe(ref Unsafe.As<byte, ushort>(ref destination), (nuint)i);
                break;
        }
    }

    private static float Value(ReadOnlySpan<byte> stored, Term t, int i)
    {
        var values = stored[t.Offset..];
        return t.DType switch
        {
            SafetensorsDType.F32 => MemoryMarshal.Cast<byte, float>(values)[i],
            SafetensorsDType.F16 => (float)BitConverter.UInt16BitsToHalf(MemoryMarshal.Cast<byte, ushort>(values)[i]),
            _ => BFloat16ToSingle(MemoryMarshal.Cast<byte, ushort>(values)[i]),
        };
    }

    private static void Store(float value, SafetensorsDType output, Span<byte> destination, int i)
    {
        switch (output)
        {
            case SafetensorsDType.F32:
                MemoryMarshal.Cast<byte, float>(destination)[i] = value;
                break;
            case SafetensorsDType.F16:
                MemoryMarshal.Cast<byte, ushort>(destination)[i] = BitConverter.HalfToUInt16Bits((Half)value);
                break;
            default:
                uint w = BitConverter.SingleToUInt32Bits(value);
                MemoryMarshal.Cast<byte, ushort>(destination)[i] = float.IsNaN(value) ? (ushort)0x7FC0 : (ushort)((w + 0x7FFFu + ((w >> 16) & 1)) >> 16);
                break;
        }
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

    // BF16 by the rounding bias (nearest even), NaN as the quiet NaN 0x7FC0: c10's round_to_nearest_even.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> ToBFloat16Bits(Vector256<float> value)
    {
        var w = value.AsUInt32();
        var rounded = (w + Vector256.Create(0x7FFFu) + ((w >> 16) & Vector256.Create(1u))) >> 16;
        return Vector256.ConditionalSelect(Vector256.Equals(value, value).AsUInt32(), rounded, Vector256.Create(0x7FC0u));
    }
}
