using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// <see cref="MagnitudeTrim"/>'s decision for a whole tensor, applied to it block by block: keep every entry above the
/// k-th largest magnitude, and of the entries equal to it only as many as make k in all (the first ones in row-major
/// order; top-k's own choice among equal magnitudes is unspecified, and only exact ties can tell the two apart).
/// </summary>
internal sealed class MagnitudeCut
{
    private readonly double threshold;

    // How many entries equal to the threshold are still to be kept; -1 where all of them are.
    private long tiesLeft;

    private MagnitudeCut(double threshold, long ties)
    {
        this.threshold = threshold;
        tiesLeft = ties;
    }

    /// <summary>The cut keeping floor(<paramref name="density"/> * numel) entries of the tensor whose magnitudes are <paramref name="magnitudes"/> (flat).</summary>
    public static MagnitudeCut Of(Tensor magnitudes, double density)
    {
        using var scope = NewDisposeScope();
        long n = magnitudes.shape[0];
        long keep = (long)(density * n);
        if (keep == 0)
            return new MagnitudeCut(double.PositiveInfinity, 0);
        var kth = KthLargest(magnitudes, keep);
        long above = magnitudes.gt(kth).sum().item<long>();
        long equal = magnitudes.eq(kth).sum().item<long>();
        // Almost always every entry equal to the k-th is kept (it is one entry), and no block needs to count ties.
        return new MagnitudeCut(kth, equal == keep - above ? -1 : keep - above);
    }

    // A sample brackets the k-th largest; only the entries inside the bracket are selected from. The full selection
    // (kthvalue over all n) costs about ten times as much at 45 million entries; it remains the fallback where the
    // bracket misses.
    private static double KthLargest(Tensor magnitudes, long keep)
    {
        long n = magnitudes.shape[0];
        long step = Math.Max(1, n >> 18);
        if (step > 1)
        {
            var sample = magnitudes[TensorIndex.Slice(0, null, step)].contiguous();
            long m = sample.shape[0];
            double fraction = 1 - (double)keep / n;
            double margin = 6 * Math.Sqrt(fraction * (1 - fraction) / m) + 2.0 / m;
            long low = Math.Clamp((long)((fraction - margin) * m), 1, m);
            long high = Math.Clamp((long)((fraction + margin) * m) + 1, 1, m);
            var lo = sample.kthvalue(low, 0).values;
            var hi = sample.kthvalue(high, 0).values;
            long aboveBracket = magnitudes.gt(hi).sum().item<long>();
            var inside = magnitudes.masked_select(magnitudes.ge(lo).logical_and_(magnitudes.le(hi)));
            long rank = keep - aboveBracket;
            if (rank >= 1 && rank <= inside.shape[0])
                return inside.kthvalue(inside.shape[0] - rank + 1, 0).values.item<float>();
        }
        // The k-th largest is the (n - k + 1)-th smallest; selection, not a sort.
        return magnitudes.kthvalue(n - keep + 1, 0).values.item<float>();
    }

    /// <summary>The next block of the tensor, trimmed; blocks must come in row-major order, each once.</summary>
    public Tensor Apply(Tensor block)
    {
        using var scope = NewDisposeScope();
        var magnitudes = block.abs();
        if (tiesLeft < 0)
            return block.mul(magnitudes.ge(threshold)).MoveToOuterDisposeScope();
        var keep = magnitudes.gt(threshold);
        var tied = magnitudes.eq(threshold);
        long ties = tied.sum().item<long>();
        if (ties > 0)
        {
            var first = tied.reshape(-1).cumsum(0, ScalarType.Int64).le(tiesLeft).view_as(tied).logical_and_(tied);
            keep = keep.logical_or_(first);
            tiesLeft -= Math.Min(ties, tiesLeft);
        }
        return block.mul(keep).MoveToOuterDisposeScope();
    }
}
