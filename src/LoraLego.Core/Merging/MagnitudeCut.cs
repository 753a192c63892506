using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using LoraLego.Core.Formats;
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
    internal sealed record BracketCount(ReadOnlyMemory<float> Magnitudes, ReadOnlyMemory<long> Indices, long Above);

    public bool Keeps(float magnitude, long index) => magnitude > Threshold || (magnitude == Threshold && index <= LastTie);

    /// <summary>The cut keeping floor(<paramref name="density"/> * numel) entries of the tensor whose magnitudes are <paramref name="magnitudes"/> (flat).</summary>
    public static MagnitudeCut Of(Tensor magnitudes, double density) => Find(magnitudes.shape[0], density,
        indices =>
        {
            using var at = tensor(indices, device: magnitudes.device);
            using var sample = magnitudes.index_select(0, at);
            return TensorBytes.ToArray<float>(sample);
        },
        (lo, hi) =>
        {
            using var scope = NewDisposeScope();
            var indices = magnitudes.ge(lo).logical_and_(magnitudes.le(hi)).nonzero().reshape(-1);
            return new BracketCount(TensorBytes.ToArray<float>(magnitudes.index_select(0, indices)), TensorBytes.ToArray<long>(indices),
                magnitudes.gt(hi).sum().item<long>());
        });

    /// <summary>
    /// The cut keeping floor(<paramref name="density"/> * <paramref name="count"/>) of a task's entries, found from a
    /// sample of its magnitudes (the entries at the flat indices given to <paramref name="sample"/>) that brackets the k-th largest,
    /// and one count of the task against that bracket (<paramref name="countInside"/>), whose few entries inside are
    /// selected from exactly. A full selection over all entries costs about ten times as much at 45 million entries;
    /// it remains the fallback where the bracket misses.
    /// </summary>
    internal static MagnitudeCut Find(long count, double density, Func<long[], Memory<float>> sample, Func<float, float, BracketCount> countInside)
    {
        long keep = (long)(density * count);
        if (Settled(keep, count) is { } settled)
            return settled;
        if (SampledCut.Draw(count, keep, sample) is { } sampled && sampled.Settle(countInside(sampled.Lo, sampled.Hi)) is { } cut)
            return cut;
        return Reselect(count, keep, sample, countInside);
    }

    /// <summary>
    /// The cut where the first bracket missed (or none was drawn): from a bracket three times as wide drawn from the same
    /// sample, and from every entry only where that misses too. <paramref name="drawn"/> sees the wide bracket first (tests).
    /// </summary>
    internal static MagnitudeCut Reselect(long count, long keep, Func<long[], Memory<float>> sample, Func<float, float, BracketCount> countInside,
        Func<SampledCut, SampledCut>? drawn = null)
    {
        if (SampledCut.Draw(count, keep, sample, SampledCut.WideDeviations) is { } wide
            && (drawn?.Invoke(wide) ?? wide) is var bracket && bracket.Settle(countInside(bracket.Lo, bracket.Hi)) is { } cut)
            return cut;
        return SelectAll(keep, countInside);
    }

    /// <summary>The cut where no selection is needed: none of the entries kept, or all.</summary>
    internal static MagnitudeCut? Settled(long keep, long count) => keep == 0 ? KeepNone : keep == count ? KeepAll : null;

    /// <summary>The cut selected from every entry (<paramref name="countInside"/> over the widest bracket): where no bracket was drawn, or it missed.</summary>
    internal static MagnitudeCut SelectAll(long keep, Func<float, float, BracketCount> countInside) =>
        Select(countInside(0, float.PositiveInfinity), keep) ?? throw new InvalidOperationException("every entry lies inside the widest bracket");

    /// <summary>
    /// A bracket [<see cref="Lo"/>, <see cref="Hi"/>] around the k-th largest magnitude, drawn from a sample, and
    /// <see cref="Estimate"/> inside it, the sample's own k-th largest. Entries outside the bracket are decided by it
    /// (kept above, trimmed below) if it holds the k-th largest; those inside wait for <see cref="Settle"/>.
    /// </summary>
    internal sealed record SampledCut(long Keep, float Lo, float Hi, float Estimate, double Deviations)
    {
        /// <summary>
        /// The first bracket's half width in standard deviations of the sample's quantile: it misses the k-th largest about
        /// once in 16 000 draws (a 7B merge draws 1 792: 8 adapters x 224 modules), and each entry inside it is collected
        /// during the combination pass, so a wider one costs every merge and a narrower one retries more often.
        /// </summary>
        public const double NarrowDeviations = 4;

        /// <summary>The retry's: it misses about once in 10^32 draws.</summary>
        public const double WideDeviations = 12;

        /// <summary>
        /// The sample's bracket for keeping <paramref name="keep"/> of <paramref name="count"/> entries (0 &lt; keep &lt; count);
        /// null where the tensor is too small to sample (every entry is selected from then).
        /// </summary>
        public static SampledCut? Draw(long count, long keep, Func<long[], Memory<float>> sample, double deviations = NarrowDeviations)
        {
            if (count >> SampleLog2 <= 1)
                return null;
            var magnitudes = sample(SampleIndices(count)).Span;
            int m = magnitudes.Length;
            double fraction = 1 - (double)keep / count;
            // Order statistics of the sample on either side of the k-th largest's expected place.
            double margin = deviations * Math.Sqrt(fraction * (1 - fraction) / m) + 2.0 / m;
            int low = (int)Math.Clamp((long)((fraction - margin) * m), 1, m);
            int high = (int)Math.Clamp((long)((fraction + margin) * m) + 1, 1, m);
            int middle = (int)Math.Clamp((long)(fraction * m) + 1, low, high);
            Span<float> kth = stackalloc float[3];
            OrderStatistics(magnitudes, [low, high, middle], kth);
            return new SampledCut(keep, kth[0], kth[1], kth[2], deviations);
        }

        /// <summary>Keeps the entries above <see cref="Estimate"/>: the exact cut's decision for every entry outside the bracket.</summary>
        public MagnitudeCut Provisional => new(Estimate, -1);

        /// <summary>The exact cut, from the entries at or inside the bracket and the count above it; null where the bracket missed the k-th largest.</summary>
        public MagnitudeCut? Settle(BracketCount bracketed) => Select(bracketed, Keep);
    }

    // A Weyl sequence s * g mod count, g near count / golden ratio and coprime to it: distinct entries spread over rows
    // and columns alike. (Every step-th entry would see only the columns a multiple of the step hits: 64 of 4096 where
    // the step is 64, and then the bracket misses.)
    // The adapters of a module, and modules of one shape, sample the same indices: they are kept per entry count for the
    // last few counts (a model has a few module shapes; a 2 MB array per adapter and module was garbage for the
    // large-object heap, and one count kept at a time was replaced at every change of shape).
    private static readonly ConcurrentDictionary<long, long[]> samples = new();

    private const int KeptSamples = 8;

    private static long[] SampleIndices(long count)
    {
        if (samples.TryGetValue(count, out var kept))
            return kept;
        if (samples.Count >= KeptSamples)
            samples.Clear();
        long g = (long)(count * 0.6180339887498949);
        while (System.Numerics.BigInteger.GreatestCommonDivisor(g, count) != 1)
            g++;
        var indices = new long[1 << SampleLog2];
        for (int s = 1; s < indices.Length; s++)
            indices[s] = indices[s - 1] + g - (indices[s - 1] >= count - g ? count : 0);
        samples[count] = indices;
        return indices;
    }

    // The k-th largest is the (m - rank + 1)-th smallest of the m inside. Null where the bracket misses it.
    private static MagnitudeCut? Select(BracketCount bracketed, long keep)
    {
        var magnitudes = bracketed.Magnitudes.Span;
        int m = magnitudes.Length;
        long rank = keep - bracketed.Above;
        if (rank < 1 || rank > m)
            return null;
        Span<float> selected = stackalloc float[1];
        OrderStatistics(magnitudes, [(int)(m - rank + 1)], selected);
        float kth = selected[0];
        long ties = rank;
        var tied = new List<long>();
        for (int i = 0; i < m; i++)
        {
            if (magnitudes[i] > kth)
                ties--;
            else if (magnitudes[i] == kth)
                tied.Add(bracketed.Indices.Span[i]);
        }
        // Almost always the k-th is one entry and every tie is kept.
        if (ties == tied.Count)
            return new MagnitudeCut(kth, long.MaxValue);
        tied.Sort();
        return new MagnitudeCut(kth, tied[(int)ties - 1]);
    }

    private const int Buckets = 1 << 16;

    // The ks[i]-th smallest (1-based) of non-negative values (magnitudes) into kth[i]. A non-negative float's bits order
    // as its value does, so one pass counts the values into buckets of equal bit ranges, and only the bucket holding a
    // k-th is copied out and selected from: Hoare's selection over all the values branches on every comparison and took
    // several times as long, and a sample's three order statistics share the counting.
    private static void OrderStatistics(ReadOnlySpan<float> values, ReadOnlySpan<int> ks, Span<float> kth)
    {
        var bits = MemoryMarshal.Cast<float, uint>(values);
        uint min = uint.MaxValue, max = 0;
        foreach (uint b in bits)
        {
            min = Math.Min(min, b);
            max = Math.Max(max, b);
        }
        int shift = 0;
        while ((max - min) >> shift >= Buckets)
            shift++;
        var counts = ArrayPool<int>.Shared.Rent(Buckets);
        try
        {
            Array.Clear(counts, 0, Buckets);
            foreach (uint b in bits)
                counts[(b - min) >> shift]++;
            for (int q = 0; q < ks.Length; q++)
            {
                int bucket = 0, below = 0;
                while (below + counts[bucket] < ks[q])
                    below += counts[bucket++];
                var inside = ArrayPool<float>.Shared.Rent(counts[bucket]);
                int n = 0;
                for (int i = 0; i < bits.Length; i++)
                    if ((bits[i] - min) >> shift == bucket)
                        inside[n++] = values[i];
                kth[q] = Hoare(inside.AsSpan(0, n), ks[q] - below);
                ArrayPool<float>.Shared.Return(inside);
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(counts);
        }
    }

    // The k-th smallest (1-based) of values, which it reorders: Hoare's selection, linear on average.
    private static float Hoare(Span<float> values, int k)
    {
        int lo = 0, hi = values.Length - 1, target = k - 1;
        while (lo < hi)
        {
            float x = values[lo], y = values[lo + (hi - lo) / 2], z = values[hi];
            float pivot = Math.Max(Math.Min(x, y), Math.Min(Math.Max(x, y), z));
            int i = lo, j = hi;
            while (i <= j)
            {
                while (values[i] < pivot)
                    i++;
                while (values[j] > pivot)
                    j--;
                if (i <= j)
                {
                    (values[i], values[j]) = (values[j], values[i]);
                    i++;
                    j--;
                }
            }
            if (target <= j)
                hi = j;
            else if (target >= i)
                lo = i;
            else
                return values[target];
        }
        return values[target];
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
