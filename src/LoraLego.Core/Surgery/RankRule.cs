using System.Text.Json.Nodes;

namespace LoraLego.Core.Surgery;

/// <summary>How a module's rank is chosen from its singular values: which criterion, and the most ranks any module gets.</summary>
public enum RankCriterion
{
    /// <summary>Exactly the maximum rank (fewer only where the update has fewer singular values).</summary>
    Fixed,

    /// <summary>The fewest ranks whose squared singular values hold the fraction <see cref="RankRule.Value"/> of the update's squared Frobenius norm (kohya's sv_fro, on energy).</summary>
    Energy,

    /// <summary>Every singular value at least <see cref="RankRule.Value"/> times the largest (kohya's sv_ratio, as a fraction).</summary>
    RelativeThreshold,
}

/// <summary>
/// A per-module rank choice for resizing or extracting an adapter. The dynamic criteria choose at most
/// <see cref="MaxRank"/> ranks and at least one, so every module stays a valid LoRA.
/// </summary>
public sealed record RankRule(RankCriterion Criterion, double Value, int? MaxRank)
{
    public static RankRule Fixed(int rank) => new(RankCriterion.Fixed, rank, rank);

    public static RankRule Energy(double fraction, int? maxRank = null) => new(RankCriterion.Energy, fraction, maxRank);

    public static RankRule RelativeThreshold(double fraction, int? maxRank = null) => new(RankCriterion.RelativeThreshold, fraction, maxRank);

    /// <summary>
    /// The rank for singular values <paramref name="values"/> (largest first) of an update whose squared Frobenius
    /// norm is <paramref name="totalEnergy"/>: the sum of all its squared singular values, which may be more than
    /// those given when only the leading ones were computed.
    /// </summary>
    public int Choose(IReadOnlyList<double> values, double totalEnergy, int fallbackMaxRank)
    {
        int cap = Math.Min(MaxRank ?? fallbackMaxRank, values.Count);
        if (cap <= 0)
            return 0;
        int k = Criterion switch
        {
            RankCriterion.Fixed => cap,
            RankCriterion.Energy => EnergyRank(values, totalEnergy, cap),
            _ => values.Take(cap).Count(v => v >= Value * values[0]),
        };
        return Math.Clamp(k, 1, cap);
    }

    /// <summary>The fraction of <paramref name="totalEnergy"/> the first <paramref name="k"/> singular values hold.</summary>
    public static double EnergyKept(IReadOnlyList<double> values, double totalEnergy, int k) =>
        totalEnergy > 0 ? Math.Min(1.0, values.Take(k).Sum(v => v * v) / totalEnergy) : 1.0;

    private int EnergyRank(IReadOnlyList<double> values, double totalEnergy, int cap)
    {
        double kept = 0;
        for (int k = 1; k <= cap; k++)
        {
            kept += values[k - 1] * values[k - 1];
            // A relative slack so that a fraction of 1 is met by the full spectrum despite rounding in the sums.
            if (kept >= Value * totalEnergy * (1 - 1e-12))
                return k;
        }
        return cap;
    }

    /// <summary>The rule as written into an adapter's config.</summary>
    public JsonObject ToJson() => new()
    {
        ["criterion"] = Criterion switch
        {
            RankCriterion.Fixed => "rank",
            RankCriterion.Energy => "energy",
            _ => "relative_threshold",
        },
        ["value"] = Value,
        ["max_rank"] = MaxRank is { } m ? JsonValue.Create(m) : null,
    };

    public override string ToString() => Criterion switch
    {
        RankCriterion.Fixed => $"rank {MaxRank}",
        RankCriterion.Energy => $"energy {Value:G4}" + (MaxRank is { } m ? $", at most rank {m}" : ""),
        _ => $"singular values >= {Value:G4} x the largest" + (MaxRank is { } n ? $", at most rank {n}" : ""),
    };
}
