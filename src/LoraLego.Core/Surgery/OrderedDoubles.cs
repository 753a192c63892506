using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LoraLego.Core.Surgery;

/// <summary>
/// Float64 dot products and scaled additions whose rounding depends only on the lengths: 256-bit vectors with
/// separate multiplies and adds (no fused multiply-add, whose rounding differs) and partial sums combined in one fixed
/// order, so any machine and any thread count gives the same bits.
/// </summary>
internal static class OrderedDoubles
{
    private const int Lanes = 4;

    /// <summary>Σ x_i y_i over the common length.</summary>
    public static double Dot(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        int n = Math.Min(x.Length, y.Length), i = 0;
        ref double px = ref MemoryMarshal.GetReference(x);
        ref double py = ref MemoryMarshal.GetReference(y);
        // Four independent sums hide the adds' latency.
        Vector256<double> s0 = default, s1 = default, s2 = default, s3 = default;
        for (; i + 4 * Lanes <= n; i += 4 * Lanes)
        {
            s0 += Vector256.LoadUnsafe(ref px, (nuint)i) * Vector256.LoadUnsafe(ref py, (nuint)i);
            s1 += Vector256.LoadUnsafe(ref px, (nuint)(i + Lanes)) * Vector256.LoadUnsafe(ref py, (nuint)(i + Lanes));
            s2 += Vector256.LoadUnsafe(ref px, (nuint)(i + 2 * Lanes)) * Vector256.LoadUnsafe(ref py, (nuint)(i + 2 * Lanes));
            s3 += Vector256.LoadUnsafe(ref px, (nuint)(i + 3 * Lanes)) * Vector256.LoadUnsafe(ref py, (nuint)(i + 3 * Lanes));
        }
        for (; i + Lanes <= n; i += Lanes)
            s0 += Vector256.LoadUnsafe(ref px, (nuint)i) * Vector256.LoadUnsafe(ref py, (nuint)i);
        var s = (s0 + s1) + (s2 + s3);
        double sum = (s.GetElement(0) + s.GetElement(1)) + (s.GetElement(2) + s.GetElement(3));
        for (; i < n; i++)
            sum += x[i] * y[i];
        return sum;
    }

    /// <summary>y += scale x over the common length.</summary>
    public static void AddScaled(double scale, ReadOnlySpan<double> x, Span<double> y)
    {
        int n = Math.Min(x.Length, y.Length), i = 0;
        ref double px = ref MemoryMarshal.GetReference(x);
        ref double py = ref MemoryMarshal.GetReference(y);
        var s = Vector256.Create(scale);
        for (; i + Lanes <= n; i += Lanes)
            (Vector256.LoadUnsafe(ref py, (nuint)i) + s * Vector256.LoadUnsafe(ref px, (nuint)i)).StoreUnsafe(ref py, (nuint)i);
        for (; i < n; i++)
            y[i] += scale * x[i];
    }
}
