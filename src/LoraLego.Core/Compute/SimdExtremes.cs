using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoraLego.Core.Compute;

/// <summary>
/// The lane-wise larger or smaller of two vectors in one instruction (vmaxps / vminps, vmaxpd / vminpd) where there is
/// AVX. Since .NET 9 <c>Vector256.Max</c> and <c>Min</c> are IEEE 754's maximum and minimum, whose NaN and signed-zero
/// cases take several more instructions per vector; for finite values the two differ only in which zero they return
/// from +0 and -0, so these are for finite values where that does not matter.
/// </summary>
internal static class SimdExtremes
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Larger<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged =>
        !Avx.IsSupported ? Vector256.Max(a, b)
        : typeof(T) == typeof(float) ? Avx.Max(a.AsSingle(), b.AsSingle()).As<float, T>() : Avx.Max(a.AsDouble(), b.AsDouble()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Smaller<T>(Vector256<T> a, Vector256<T> b) where T : unmanaged =>
        !Avx.IsSupported ? Vector256.Min(a, b)
        : typeof(T) == typeof(float) ? Avx.Min(a.AsSingle(), b.AsSingle()).As<float, T>() : Avx.Min(a.AsDouble(), b.AsDouble()).As<double, T>();
}
