namespace LoraLego.Core.Merging.Tuning;

/// <summary>A candidate's mean answer loss on the tuning rows, on the held-out validation rows and on both, and its validation exact match.</summary>
public readonly record struct CandidateScore(double TuneLoss, double ValidationLoss, double Loss, double ValidationExactMatch)
{
    /// <summary>
    /// Whether this score is no worse than <paramref name="reference"/> on both row sets: a candidate that passes is no
    /// worse on all the tuning data either, whose mean loss is a token-weighted mean of the two.
    /// </summary>
    public bool NoWorseThan(CandidateScore reference) => TuneLoss <= reference.TuneLoss && ValidationLoss <= reference.ValidationLoss;
}
