using LoraLego.Core.Models;

namespace LoraLego.Core.Merging.Tuning;

/// <summary>
/// The tuning rows split once, by seed, into the rows the search fits to and held-out validation rows it chooses by,
/// so that a merge fitted to the tuning rows' noise is not the one returned.
/// </summary>
public sealed class TuningSplit
{
    private TuningSplit(IReadOnlyList<TokenRow> tune, IReadOnlyList<TokenRow> validation)
    {
        Tune = tune;
        Validation = validation;
    }

    public IReadOnlyList<TokenRow> Tune { get; }

    public IReadOnlyList<TokenRow> Validation { get; }

    /// <summary>Shuffles <paramref name="rows"/> with <paramref name="seed"/> and holds out <paramref name="validationFraction"/> of them (at least one row each side).</summary>
    public static TuningSplit Of(IReadOnlyList<TokenRow> rows, double validationFraction, int seed)
    {
        var usable = rows.Where(r => r.ScoredTokens > 0).ToArray();
        if (usable.Length < 2)
            throw new LoraException(LoraErrorKind.InvalidData, null,
                $"the tuning data has {usable.Length} row(s) with a token to score; a search needs at least 2 (tuning and validation rows)");
        if (!(validationFraction > 0 && validationFraction < 1))
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"the validation fraction {validationFraction} must lie in (0, 1)");
        new Random(seed).Shuffle(usable);
        int held = Math.Clamp((int)Math.Round(usable.Length * validationFraction), 1, usable.Length - 1);
        return new TuningSplit(usable[held..], usable[..held]);
    }
}
