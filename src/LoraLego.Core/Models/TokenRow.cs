namespace LoraLego.Core.Models;

/// <summary>
/// One row of token ids and the labels that say which of them are scored, in the Hugging Face
/// convention: <c>Labels</c> is aligned with <c>Ids</c>, position t's label is predicted from the
/// tokens before t (so position 0 is never scored), and <see cref="Ignored"/> (-100) marks a
/// position that is not scored, such as a prompt. A row without labels scores every token after
/// its first.
/// </summary>
public sealed class TokenRow
{
    /// <summary>The label of a position that is not scored (transformers' and cross_entropy's ignore index).</summary>
    public const long Ignored = -100;

    /// <param name="ids">Token ids.</param>
    /// <param name="labels">One label per id, <see cref="Ignored"/> where nothing is scored; null scores every token after the first.</param>
    public TokenRow(long[] ids, long[]? labels = null)
    {
        ArgumentNullException.ThrowIfNull(ids);
        if (labels is not null && labels.Length != ids.Length)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"a row of {ids.Length} ids has {labels.Length} labels; give one label per id");
        Ids = ids;
        Labels = labels ?? ids;
        HasLabels = labels is not null;
        int firstScored = 0;
        for (int t = 1; t < Labels.Length; t++)
        {
            if (Labels[t] == Ignored)
                continue;
            ScoredTokens++;
            if (firstScored == 0)
                firstScored = t;
        }
        PromptLength = HasLabels ? firstScored : 0;
    }

    public long[] Ids { get; }

    /// <summary>One label per id; for a row given without labels, the ids themselves.</summary>
    public long[] Labels { get; }

    /// <summary>Whether the row came with labels (answer-only scoring) rather than scoring every token.</summary>
    public bool HasLabels { get; }

    public int Length => Ids.Length;

    /// <summary>Positions scored: those after the first whose label is not <see cref="Ignored"/>.</summary>
    public int ScoredTokens { get; }

    /// <summary>The positions before the first scored one (the prompt of a labelled row); 0 for a row without labels, which has no known prompt, or when nothing is scored.</summary>
    public int PromptLength { get; }

    /// <summary>The label a model's output at position t is scored against (the label of t + 1), <see cref="Ignored"/> for the last.</summary>
    public long TargetAt(int t) => t + 1 < Labels.Length ? Labels[t + 1] : Ignored;

    /// <summary>The first <paramref name="maxLength"/> positions, ids and labels alike; this row when it is no longer.</summary>
    public TokenRow Truncate(int maxLength) =>
        Length <= maxLength ? this : new TokenRow(Ids[..maxLength], HasLabels ? Labels[..maxLength] : null);
}
