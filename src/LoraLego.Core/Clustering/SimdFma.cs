using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LoraLego.Core.Clustering;

/// <summary>
/// a * b + c per lane with one rounding on every machine: the FMA instruction where there is one,
/// else Math.FusedMultiplyAdd lane by lane, so sums built from it have the same bits everywhere.
/// </summary>
internal static class SimdFma
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<double> MultiplyAdd(Vector256<double> a, Vector256<double> b, Vector256<double> c) =>
        System.Runtime.Intrinsics.X86.Fma.IsSupported
            ? System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a, b, c)
            : Vector256.Create(Math.FusedMultiplyAdd(a[0], b[0], c[0]), Math.FusedMultiplyAdd(a[1], b[1], c[1]),
                Math.FusedMultiplyAdd(a[2], b[2], c[2]), Math.FusedMultiplyAdd(a[3], b[3], c[3]));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c)
    {
        if (System.Runtime.Intrinsics.X86.Fma.IsSupported)
            return System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a, b, c);
        Span<float> lanes = stackalloc float[Vector256<float>.Count];
        for (int i = 0; i < lanes.Length; i++)
            lanes[i] = MathF.FusedMultiplyAdd(a[i], b[i], c[i]);
        return Vector256.Create<float>(lanes);
    }

    /// <summary>The float64 or float32 overload, for code written once for both.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> MultiplyAdd<T>(Vector256<T> a, Vector256<T> b, Vector256<T> c) where T : unmanaged =>
        typeof(T) == typeof(double)
            ? MultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>()
            : MultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>();
}
