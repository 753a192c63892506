using LoraLego.Core.Adapters;

namespace LoraLego.Core.Merging.Tuning;

/// <summary>What a merge search found.</summary>
/// <param name="Adapter">The best merge, its choice recorded in its <see cref="Adapters.LoraAdapter.Provenance"/> (the search's record, the merge's own under "merge").</param>
/// <param name="Best">The candidate it was merged from.</param>
/// <param name="Score">The best merge's losses.</param>
/// <param name="Start">The starting point the result is measured against: the start with the lowest loss on all the tuning rows.</param>
/// <param name="History">Every evaluation, in order.</param>
/// <param name="Cancelled">True when the search was cancelled and the result is the best found before that.</param>
public sealed record MergeSearchResult(LoraAdapter Adapter, MergeCandidate Best, CandidateScore Score, MergeSearchStep Start,
    IReadOnlyList<MergeSearchStep> History, bool Cancelled);
