namespace LoraLego.Core.Merging.Tuning;

/// <summary>One evaluation of a merge search: a row of its history.</summary>
/// <param name="Evaluation">1-based position in the search.</param>
/// <param name="Stage">start, settings, weights or module scales.</param>
/// <param name="Candidate">What was merged.</param>
/// <param name="Score">Its losses on the tuning and validation rows.</param>
/// <param name="IsBest">Whether it was the best so far when evaluated (lowest validation loss, no worse than the start on either row set).</param>
public sealed record MergeSearchStep(int Evaluation, string Stage, MergeCandidate Candidate, CandidateScore Score, bool IsBest)
{
    public string Settings => Candidate.Describe();

    public double TuneLoss => Score.TuneLoss;

    public double ValidationLoss => Score.ValidationLoss;

    public double ValidationExactMatch => Score.ValidationExactMatch;
}
