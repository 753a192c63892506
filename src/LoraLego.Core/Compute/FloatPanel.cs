using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoraLego.Core.Compute;

/// <summary>
/// 32 consecutive float32 values held in registers, the unit the rank-r product kernels accumulate in: four 256-bit
/// vectors, or two 512-bit ones where the core runs 512-bit fused multiply-adds. Each lane gets the same single-rounding
/// multiply-add at either width, so a kernel written over a panel gives the same bits at both; the wide one issues half
/// the instructions (a full 512-bit core, such as Zen 5, doubles its multiply-adds per cycle).
/// </summary>
internal unsafe interface IFloatPanel<TSelf> where TSelf : struct, IFloatPanel<TSelf>
{
    static abstract TSelf Load(float* source);

    /// <summary>sum + *scale * this, lane by lane with one rounding (the scale broadcast straight from memory: one load, no shuffle).</summary>
    TSelf MultiplyAdd(float* scale, TSelf sum);

    TSelf Times(float scale);

    void Store(float* target);
}

/// <summary>Which panel the kernels use here.</summary>
internal static class FloatPanel
{
    /// <summary>Whether 512-bit vectors run in hardware (AVX-512F; .NET leaves them off where they would slow the core down).</summary>
    public static bool Wide { get; } = Vector512.IsHardwareAccelerated && Avx512F.IsSupported;

    public const int Floats = 32;
}

/// <summary>A panel in four 256-bit vectors (AVX2 with FMA).</summary>
internal readonly unsafe struct Panel256(Vector256<float> v0, Vector256<float> v1, Vector256<float> v2, Vector256<float> v3) : IFloatPanel<Panel256>
{
    private readonly Vector256<float> v0 = v0, v1 = v1, v2 = v2, v3 = v3;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Panel256 Load(float* source) =>
        new(Vector256.Load(source), Vector256.Load(source + 8), Vector256.Load(source + 16), Vector256.Load(source + 24));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Panel256 MultiplyAdd(float* scale, Panel256 sum)
    {
        var b = Avx.BroadcastScalarToVector256(scale);
        return new(Fma.MultiplyAdd(b, v0, sum.v0), Fma.MultiplyAdd(b, v1, sum.v1), Fma.MultiplyAdd(b, v2, sum.v2), Fma.MultiplyAdd(b, v3, sum.v3));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Panel256 Times(float scale)
    {
        var s = Vector256.Create(scale);
        return new(v0 * s, v1 * s, v2 * s, v3 * s);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store(float* target)
    {
        v0.Store(target);
        v1.Store(target + 8);
        v2.Store(target + 16);
        v3.Store(target + 24);
    }
}

/// <summary>A panel in two 512-bit vectors (AVX-512F).</summary>
internal readonly unsafe struct Panel512(Vector512<float> v0, Vector512<float> v1) : IFloatPanel<Panel512>
{
    private readonly Vector512<float> v0 = v0, v1 = v1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Panel512 Load(float* source) => new(Vector512.Load(source), Vector512.Load(source + 16));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Panel512 MultiplyAdd(float* scale, Panel512 sum)
    {
        var b = Avx512F.BroadcastScalarToVector512(Vector128.CreateScalarUnsafe(*scale));
        return new(Avx512F.FusedMultiplyAdd(b, v0, sum.v0), Avx512F.FusedMultiplyAdd(b, v1, sum.v1));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Panel512 Times(float scale)
    {
        var s = Vector512.Create(scale);
        return new(v0 * s, v1 * s);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store(float* target)
    {
        v0.Store(target);
        v1.Store(target + 16);
    }
}
