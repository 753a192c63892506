using LoraLego.Core.Formats;
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
    /// carries sign(scaling). One max and one min per row of the whole tensor (each the first on
    /// ties), not a loop per unit: the largest magnitude is the larger of max and -min, the earlier
    /// of the two where they are equal.
    /// </summary>
    internal static (bool[] Negative, long[] At, double[] Entries) LargestEntries(Tensor rows, IReadOnlyList<Msu> units, int outFeatures)
    {
        using var scope = NewDisposeScope();
        var (maxima, maxAt) = rows.max(1);
        var (minima, minAt) = rows.min(1);
        double[] highs = TensorBytes.ToArray<double>(maxima.to_type(ScalarType.Float64)), lows = TensorBytes.ToArray<double>(minima.to_type(ScalarType.Float64));
        long[] highAt = TensorBytes.ToArray<long>(maxAt), lowAt = TensorBytes.ToArray<long>(minAt);
        var negative = new bool[units.Count];
        var at = new long[units.Count];
        var entries = new double[units.Count];
        for (int i = 0; i < negative.Length; i++)
        {
            bool low = -lows[i] > highs[i] || (-lows[i] == highs[i] && lowAt[i] < highAt[i]);
            (at[i], entries[i]) = low ? (lowAt[i], lows[i]) : (highAt[i], highs[i]);
            negative[i] = (at[i] < outFeatures && units[i].Scaling < 0 ? -entries[i] : entries[i]) < 0;
        }
        return (negative, at, entries);
    }
}
