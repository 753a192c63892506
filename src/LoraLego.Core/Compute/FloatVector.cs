using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LoraLego.Core.Compute;

/// <summary>
/// One SIMD vector of float32 lanes, for kernels written once and run at either width: comparisons give all-ones lanes
/// where true, so a mask selects with <c>&amp;</c>. Every operation works lane by lane with the same rounding at both
/// widths, so a kernel over <see cref="FloatVector256"/> and <see cref="FloatVector512"/> gives the same bits; the wide
/// one issues half the instructions where the core runs 512-bit vectors at full width (<see cref="FloatPanel.Wide"/>).
/// (.NET's own ISimdVector is not public.)
/// </summary>
internal unsafe interface IFloatVector<TSelf> where TSelf : struct, IFloatVector<TSelf>
{
    static abstract int Count { get; }

    static abstract TSelf Load(float* source);

    static abstract TSelf Create(float value);

    void Store(float* target);

    float this[int lane] { get; }

    TSelf Abs();

    TSelf GreaterThan(TSelf other);

    TSelf GreaterThanOrEqual(TSelf other);

    TSelf LessThan(TSelf other);

    TSelf EqualTo(TSelf other);

    /// <summary>This with the lanes of <paramref name="mask"/> cleared (this &amp; ~mask).</summary>
    TSelf Except(TSelf mask);

    TSelf Max(TSelf other);

    /// <summary>Bit i set where lane i's sign bit is (a mask's true lanes).</summary>
    uint MostSignificantBits();

    static abstract TSelf operator &(TSelf x, TSelf y);

    static abstract TSelf operator |(TSelf x, TSelf y);

    static abstract TSelf operator ^(TSelf x, TSelf y);

    static abstract TSelf operator +(TSelf x, TSelf y);

    static abstract TSelf operator -(TSelf x, TSelf y);

    static abstract TSelf operator *(TSelf x, TSelf y);

    static abstract TSelf operator /(TSelf x, TSelf y);
}

/// <summary>Eight float32 lanes (AVX2).</summary>
internal readonly unsafe struct FloatVector256(Vector256<float> v) : IFloatVector<FloatVector256>
{
    private readonly Vector256<float> v = v;

    public static int Count => Vector256<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatVector256 Load(float* source) => new(Vector256.Load(source));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatVector256 Create(float value) => new(Vector256.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store(float* target) => v.Store(target);

    public float this[int lane] => v.GetElement(lane);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FloatVector256 Abs() => new(Vector256.Abs(v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FloatVector256 GreaterThan(FloatVector256 other) => new(Vector256.GreaterThan(v, other.v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FloatVector256 GreaterThanOrEqual(FloatVector256 other) => new(Vector256.GreaterThanOrEqual(v, other.v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FloatVector256 LessThan(FloatVector256 other) => new(Vector256.LessThan(v, other.v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FloatVector256 EqualTo(FloatVector256 other) => new(Vector256.Equals(v, other.v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FloatVector256 Except(FloatVector256 mask) => new(Vector256.AndNot(v, mask.v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FloatVector256 Max(FloatVector256 other) => new(Vector256.Max(v, other.v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint MostSignificantBits() => Vector256.ExtractMostSignificantBits(v);

    public static FloatVector256 operator &(FloatVector256 x, FloatVector256 y) => new(x.v & y.v);

    public static FloatVector256 operator |(FloatVector256 x, FloatVector256 y) => new(x.v | y.v);

    public static FloatVector256 operator ^(FloatVector256 x, FloatVector256 y) => new(x.v ^ y.v);

    public static FloatVector256 operator +(FloatVector256 x, FloatVector256 y) => new(x.v + y.v);

    public static FloatVector256 operator -(FloatVector256 x, FloatVector256 y) => new(x.v - y.v);

    public static FloatVector256 operator *(FloatVector256 x, FloatVector256 y) => new(x.v * y.v);

    public static FloatVector256 operator /(FloatVector256 x, FloatVector256 y) => new(x.v / y.v);
}

/// <summary>Sixteen float32 lanes (AVX-512F).</summary>
internal readonly unsafe struct FloatVector512(Vector512<float> v) : IFloatVector<FloatVector512>
{
    private readonly Vector512<float> v = v;

    public static int Count => Vector512<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatVector512 Load(float* source) => new(Vector512.Load(source));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatVector512 Create(float value) => new(Vector512.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store(float* target) => v.Store(target);

    public float this[int lane] => v.GetElement(lane);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FloatVector512 Abs() => new(Vector512.Abs(v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FloatVector512 GreaterThan(FloatVector512 other) => new(Vector512.GreaterThan(v, other.v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FloatVector512 GreaterThanOrEqual(FloatVector512 other) => new(Vector512.GreaterThanOrEqual(v, other.v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FloatVector512 LessThan(FloatVector512 other) => new(Vector512.LessThan(v, other.v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FloatVector512 EqualTo(FloatVector512 other) => new(Vector512.Equals(v, other.v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FloatVector512 Except(FloatVector512 mask) => new(Vector512.AndNot(v, mask.v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public FloatVector512 Max(FloatVector512 other) => new(Vector512.Max(v, other.v));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint MostSignificantBits() => (uint)Vector512.ExtractMostSignificantBits(v);

    public static FloatVector512 operator &(FloatVector512 x, FloatVector512 y) => new(x.v & y.v);

    public static FloatVector512 operator |(FloatVector512 x, FloatVector512 y) => new(x.v | y.v);

    public static FloatVector512 operator ^(FloatVector512 x, FloatVector512 y) => new(x.v ^ y.v);

    public static FloatVector512 operator +(FloatVector512 x, FloatVector512 y) => new(x.v + y.v);

    public static FloatVector512 operator -(FloatVector512 x, FloatVector512 y) => new(x.v - y.v);

    public static FloatVector512 operator *(FloatVector512 x, FloatVector512 y) => new(x.v * y.v);

    public static FloatVector512 operator /(FloatVector512 x, FloatVector512 y) => new(x.v / y.v);
}
