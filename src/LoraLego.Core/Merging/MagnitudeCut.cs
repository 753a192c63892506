using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// <see cref="MagnitudeTrim"/>'s decision for a whole tensor, as a rule on each entry: keep every entry whose magnitude
/// is above <see cref="Threshold"/> (the k-th largest), and of the entries equal to it those at flat row-major index at
/// most <see cref="LastTie"/>, so that exactly k are kept (the first ones; top-k's own choice among equal magnitudes is
/// unspecified, and only exact ties can tell the two apart). A rule on (magnitude, index) lets any block of the tensor
/// be trimmed in any order, by any thread.
/// </summary>
internal sealed record MagnitudeCut(float Threshold, long LastTie)
{
    /// <summary>Keeps every entry (density 1).</summary>
    public static MagnitudeCut KeepAll { get; } = new(float.NegativeInfinity, long.MaxValue);

    private static MagnitudeCut KeepNone { get; } = new(float.PositiveInfinity, -1);

    /// <summary>Entries sampled for the bracket: few enough to select from at once, enough that the bracket is narrow.</summary>
    private const int SampleLog2 = 18;

    /// <summary>The magnitudes of a task's entries at or inside a bracket, with their flat indices, and how many lie above it.</summary>
    internal sealed record BracketCount(Tensor Magnitudes, Tensor Indices, long Above) : IDisposable
    {
        public void Dispose()
        {
            Magnitudes.Dispose();
            Indices.Dispose();
        }
    }

    public bool Keeps(float magnitude, long index) => magnitude > Threshold || (magnitude == Threshold && index <= LastTie);

    /// <summary>The cut keeping floor(<paramref name="density"/> * numel) entries of the tensor whose magnitudes are <paramref name="magnitudes"/> (flat).</summary>
    public static MagnitudeCut Of(Tensor magnitudes, double density) => Find(magnitudes.shape[0], density,
        step => magnitudes[TensorIndex.Slice(0, null, step)].contiguous(),
        (lo, hi) =>
        {
            var inside = magnitudes.ge(lo).logical_and_(magnitudes.le(hi));
            var indices = inside.nonzero().reshape(-1);
            return new BracketCount(magnitudes.index_select(0, indices), indices, magnitudes.gt(hi).sum().item<long>());
        });

    /// <summary>
    /// The cut keeping floor(<paramref name="density"/> * <paramref name="count"/>) of a task's entries, found from a
    /// sample of its magnitudes (every step-th entry, from <paramref name="sample"/>) that brackets the k-th largest,
    /// and one count of the task against that bracket (<paramref name="countInside"/>), whose few entries inside are
    /// selected from exactly. A full selection over all entries costs about ten times as much at 45 million entries;
    /// it remains the fallback where the bracket misses.
    /// </summary>
    internal static MagnitudeCut Find(long count, double density, Func<long, Tensor> sample, Func<float, float, BracketCount> countInside)
    {
        long keep = (long)(density * count);
        if (keep == 0)
            return KeepNone;
        if (keep == count)
            return KeepAll;
        using var scope = NewDisposeScope();
        long step = count >> SampleLog2;
        if (step > 1)
        {
            var (lo, hi) = Bracket(sample(step), keep, count);
            using var bracketed = countInside(lo, hi);
            if (Select(bracketed, keep) is { } cut)
                return cut;
        }
        using var all = countInside(0, float.PositiveInfinity);
        return Select(all, keep) ?? throw new InvalidOperationException("every entry lies inside the widest bracket");
    }

    // Order statistics of the sample on either side of the k-th largest's expected place, six standard deviations out.
    private static (float Lo, float Hi) Bracket(Tensor sample, long keep, long count)
    {
        long m = sample.shape[0];
        double fraction = 1 - (double)keep / count;
        double margin = 6 * Math.Sqrt(fraction * (1 - fraction) / m) + 2.0 / m;
        long low = Math.Clamp((long)((fraction - margin) * m), 1, m);
        long high = Math.Clamp((long)((fraction + margin) * m) + 1, 1, m);
        return (sample.kthvalue(low, 0).values.item<float>(), sample.kthvalue(high, 0).values.item<float>());
    }

    // The k-th largest is the (m - rank + 1)-th smallest of the m inside; selection, not a sort. Null where the bracket misses it.
    private static MagnitudeCut? Select(BracketCount bracketed, long keep)
    {
        using var scope = NewDisposeScope();
        var magnitudes = bracketed.Magnitudes;
        long m = magnitudes.shape[0];
        long rank = keep - bracketed.Above;
        if (rank < 1 || rank > m)
            return null;
        float kth = magnitudes.kthvalue(m - rank + 1, 0).values.item<float>();
        long ties = rank - magnitudes.gt(kth).sum().item<long>();
        var tied = bracketed.Indices.masked_select(magnitudes.eq(kth));
        // Almost always the k-th is one entry and every tie is kept.
        return new MagnitudeCut(kth, ties == tied.shape[0] ? long.MaxValue : tied.sort().Values[ties - 1].item<long>());
    }

    /// <summary>A block of the tensor, trimmed; <paramref name="firstIndex"/> is the flat index of its first entry.</summary>
    public Tensor Apply(Tensor block, long firstIndex)
    {
        using var scope = NewDisposeScope();
        var magnitudes = block.abs();
        var keep = magnitudes.gt(Threshold);
        if (LastTie >= firstIndex)
        {
            var tied = magnitudes.eq(Threshold);
            if (LastTie == long.MaxValue)
                keep = keep.logical_or_(tied);
            else if (tied.any().item<bool>())
                keep = keep.logical_or_(tied.logical_and_(arange(firstIndex, firstIndex + block.numel(), device: block.device).view_as(block).le(LastTie)));
        }
        return block.mul(keep).MoveToOuterDisposeScope();
    }
}
