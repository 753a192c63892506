using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using LoraLego.Core.Compute;
using static TorchSharp.torch;

namespace LoraLego.Core.Units;

/// <summary>
/// (a, b) and (-a, -b) give the same update, yet plain k-means sees them as far apart. Every unit
/// is turned to the one sign whose folded vector [b; a] has its largest-magnitude entry positive
/// (the first such entry on ties), a rule that gives u and -u the same canonical form.
/// </summary>
public static class SignCanonicalizer
{
    /// <summary>The rule as recorded in a merged adapter's config.</summary>
    public const string Rule = "largest-magnitude entry of [b; a] positive";

    /// <summary>The unit in canonical sign; <see cref="Msu.SignFlipped"/> tells whether it was negated.</summary>
    public static Msu Canonicalize(Msu unit)
    {
        using var rows = new MsuPool(unit.ModuleKey, [unit]).Rows();
        return LargestEntries(rows, [unit], unit.OutFeatures).Negative[0] ? unit.Negated() : unit;
    }

    /// <summary>
    /// For each row [b; a] of <paramref name="rows"/> (unscaled, in the order of <paramref name="units"/>):
    /// where its largest-magnitude entry is (the first on ties), that entry, and whether the rule negates the unit.
    /// A and B share the positive factor sqrt(|scaling|), so the unscaled values decide; only B also
    /// carries sign(scaling). One scan per row for its maximum and minimum (each the first on ties):
    /// the largest magnitude is the larger of max and -min, the earlier of the two where they are equal.
    /// </summary>
    /// <param name="rows">n x width, any floating dtype; read as float64 (exact for every stored dtype).</param>
    internal static (bool[] Negative, long[] At, double[] Entries) LargestEntries(Tensor rows, IReadOnlyList<Msu> units, int outFeatures)
    {
        using var values = rows.to_type(ScalarType.Float64).cpu().contiguous();
        return LargestEntries(MemoryMarshal.Cast<byte, double>(values.bytes), (int)rows.shape[1], units, outFeatures);
    }

    /// <summary>As <see cref="LargestEntries(Tensor, IReadOnlyList{Msu}, int)"/>, of float64 or float32 rows of <paramref name="width"/> values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static (bool[] Negative, long[] At, double[] Entries) LargestEntries<T>(ReadOnlySpan<T> all, int width, IReadOnlyList<Msu> units, int outFeatures)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var negative = new bool[units.Count];
        var at = new long[units.Count];
        var entries = new double[units.Count];
        for (int i = 0; i < negative.Length; i++)
        {
            var row = all.Slice(i * width, width);
            var (high, low) = Extremes(row);
            int highAt = FirstAt(row, high), lowAt = FirstAt(row, low);
            bool isLow = -low > high || (-low == high && lowAt < highAt);
            (at[i], entries[i]) = isLow ? (lowAt, double.CreateTruncating(low)) : (highAt, double.CreateTruncating(high));
            negative[i] = (at[i] < outFeatures && units[i].Scaling < 0 ? -entries[i] : entries[i]) < 0;
        }
        return (negative, at, entries);
    }

    // Where a value first occurs, searched on the bits (a vectorised search; IndexOf over floating values compares one by one):
    // the same place for every finite value but zero, whose two signs compare equal.
    private static int FirstAt<T>(ReadOnlySpan<T> row, T value) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (T.IsZero(value))
            return row.IndexOf(value);
        if (typeof(T) == typeof(float))
            return MemoryMarshal.Cast<T, int>(row).IndexOf(BitConverter.SingleToInt32Bits(float.CreateTruncating(value)));
        return MemoryMarshal.Cast<T, long>(row).IndexOf(BitConverter.DoubleToInt64Bits(double.CreateTruncating(value)));
    }

    // The row's largest and smallest values, a vector's lanes at a time, by the native instructions (SimdExtremes): the
    // values are finite (FiniteCheck), and +0 and -0 are found at the same place (FirstAt) and neither is negative.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (T Max, T Min) Extremes<T>(ReadOnlySpan<T> row) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int c = 0, lanes = Vector256<T>.Count;
        Vector256<T> highs = Vector256.Create(T.NegativeInfinity), lows = Vector256.Create(T.PositiveInfinity);
        for (; c + lanes <= row.Length; c += lanes)
        {
            var v = Vector256.Create(row.Slice(c, lanes));
            highs = SimdExtremes.Larger(highs, v);
            lows = SimdExtremes.Smaller(lows, v);
        }
        T max = T.NegativeInfinity, min = T.PositiveInfinity;
        for (int l = 0; l < lanes; l++)
        {
            max = T.Max(max, highs[l]);
            min = T.Min(min, lows[l]);
        }
        for (; c < row.Length; c++)
        {
            max = T.Max(max, row[c]);
            min = T.Min(min, row[c]);
        }
        return (max, min);
    }
}
