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
    public static Msu Canonicalize(Msu unit) => LargestEntryIsNegative(unit) ? unit.Negated() : unit;

    // A and B share the positive factor sqrt(|scaling|); only B also carries sign(scaling).
    private static bool LargestEntryIsNegative(Msu unit)
    {
        double best = -1;
        double signed = 0;
        int bSign = unit.Scaling < 0 ? -1 : 1;
        foreach (float x in unit.B)
            Consider(bSign * x);
        foreach (float x in unit.A)
            Consider(x);
        return signed < 0;

        void Consider(double x)
        {
            if (Math.Abs(x) > best)
            {
                best = Math.Abs(x);
                signed = x;
            }
        }
    }
}
