using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using LoraLego.Core.Compute;
using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// <see cref="TiledCombination"/> on the CPU, fused into SIMD passes that compute every
/// update entry in registers (<see cref="UpdateTiles"/>) and never store one. One pass trims the adapters' entries,
/// elects signs, and writes the weighted sum or disjoint mean, each adapter trimmed provisionally at its sample's
/// estimate of its magnitude cut while the pass counts its entries above the sampled bracket and collects the few inside;
/// the exact cut is selected from those, and only result entries whose in-bracket values it decides otherwise are
/// combined again (a bracket that misses: the cut from all entries, and a second pass). DARE's random drops replace the
/// cut by <see cref="TileDrops"/>: each band of rows' outcomes drawn ahead, then applied to the tiles in the same pass.
/// Row blocks run in parallel; each result entry is computed by one thread in a fixed order, so the result's bytes do
/// not depend on the thread count.
/// </summary>
internal static unsafe class FusedCombination
{
    // 64 rows by 256 columns per step: the 8 adapters' A columns of a step (128 KiB) stay in L2 while the rows pass.
    private const int BlockRows = 64;
    private const int BlockColumns = 256;

    /// <summary>
    /// Whether the fused passes compute this combination: CPU tensors, vector hardware, and a result TorchSharp can
    /// expose as one span (under 2 GiB).
    /// </summary>
    public static bool Covers(ModuleInputs inputs) =>
        inputs.Members[0].A.device_type == TorchSharp.DeviceType.CPU && UpdateTiles.IsAccelerated
        && inputs.Members[0].OutFeatures * inputs.Members[0].InFeatures <= int.MaxValue / sizeof(float);

    /// <summary>The combined out x in update (float32, CPU), equal to <see cref="TaskCombiner.Combine"/> on the dense updates.</summary>
    /// <remarks>The result lies in <paramref name="workspace"/>'s storage (valid until its next use) where one is given.</remarks>
    /// <param name="random">Draws the DARE drops (the dense path's draws, entry for entry); unused by the other trimmings.</param>
    public static Tensor Combine(ModuleInputs inputs, TaskCombiner combiner, int threads, CombinationWorkspace? workspace = null, Mt19937? random = null) =>
        Combine(inputs, combiner, threads, sampled => sampled, workspace, random);

    /// <summary>
    /// <paramref name="drawn"/> sees each sampled bracket before it is used (tests narrow it to force a miss);
    /// <paramref name="wide"/> false keeps the kernels on 256-bit vectors (tests compare the two).
    /// </summary>
    internal static Tensor Combine(ModuleInputs inputs, TaskCombiner combiner, int threads, Func<MagnitudeCut.SampledCut, MagnitudeCut.SampledCut> drawn,
        CombinationWorkspace? workspace = null, Mt19937? random = null, bool wide = true)
    {
        if (workspace is null)
        {
            using var own = new CombinationWorkspace();
            using var inOwn = Combine(inputs, combiner, threads, drawn, own, random, wide);
            return inOwn.clone();
        }
        var tiles = UpdateTiles.Of(inputs.Members, wide, workspace.Kept);
        using var drops = combiner.Trimming == Trimming.RandomDrop
            ? TileDrops.For(tiles, DropStream.For(inputs.Densities, tiles.Rows, tiles.Columns, ScalarType.Float32,
                random ?? throw new InvalidOperationException("random drop needs a generator")), BlockRows)
            : null;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads) };
        var cuts = Enumerable.Repeat(MagnitudeCut.KeepAll, tiles.Count).ToArray();
        var sampled = new MagnitudeCut.SampledCut?[tiles.Count];
        long count = (long)tiles.Rows * tiles.Columns;
        // Adapter i's sample in its own kept array (the adapters draw theirs side by side).
        Func<long[], Memory<float>> Sample(int i) => indices =>
        {
            var magnitudes = workspace.Kept.Get<float>("sample", indices.Length, i);
            for (int j = 0; j < indices.Length; j++)
                magnitudes[j] = tiles.Magnitude(i, indices[j]);
            return magnitudes.AsMemory(0, indices.Length);
        };
        // Where a bracket missed: adapter i's cut from a wider one, counted in a pass of its own.
        MagnitudeCut Reselect(int i) =>
            MagnitudeCut.Reselect(count, sampled[i]!.Keep, Sample(i), (lo, hi) => Count(tiles, i, lo, hi, parallel), drawn);
        if (combiner.Trimming == Trimming.Magnitude)
        {
            Parallel.For(0, tiles.Count, parallel, i =>
            {
                long keep = (long)(inputs.Members[i].Density * count);
                if (MagnitudeCut.Settled(keep, count) is { } settled)
                    cuts[i] = settled;
                else if (MagnitudeCut.SampledCut.Draw(count, keep, Sample(i)) is { } drawnCut)
                    sampled[i] = drawn(drawnCut);
                else
                    cuts[i] = MagnitudeCut.SelectAll(keep, (lo, hi) => Count(tiles, i, lo, hi, new ParallelOptions { MaxDegreeOfParallelism = 1 }));
            });
        }
        // PEFT makes a float32 tensor of the weights; doing the same keeps the rounding alike.
        var weights = inputs.Members.Select(m => (float)m.Weight).ToArray();
        var combined = workspace.Result(tiles.Rows, tiles.Columns);
        fixed (byte* bytes = combined.bytes)
        {
            var output = (float*)bytes;
            if (sampled.All(s => s is null))
            {
                CombineAll(tiles, cuts, weights, combiner.Election, output, parallel, drops: drops);
                return combined;
            }
            // One pass with each sampled adapter trimmed at its estimate, counting its entries against its bracket.
            var provisional = cuts.Select((cut, i) => sampled[i]?.Provisional ?? cut).ToArray();
            var bracketed = CombineAll(tiles, provisional, weights, combiner.Election, output, parallel, workspace, sampled);
            Settle(tiles, combiner, weights, cuts, sampled, provisional, bracketed, output, parallel, Reselect);
        }
        return combined;
    }

    // After the provisional pass: the exact cuts from the brackets, and the entries they decide otherwise combined again.
    private static void Settle(UpdateTiles tiles, TaskCombiner combiner, float[] weights, MagnitudeCut[] cuts, MagnitudeCut.SampledCut?[] sampled,
        MagnitudeCut[] provisional, MagnitudeCut.BracketCount?[] bracketed, float* output, ParallelOptions parallel, Func<int, MagnitudeCut> reselect)
    {
        // Each adapter's selection from its bracket on a thread of its own: one after another they left a core idle.
        var exact = new MagnitudeCut?[cuts.Length];
        Parallel.For(0, cuts.Length, parallel, i => exact[i] = sampled[i] is { } s ? s.Settle(bracketed[i]!) : cuts[i]);
        if (exact.Any(cut => cut is null))
        {
            // A bracket missed its k-th largest: that adapter's cut is selected from a wider one, and the pass runs again.
            for (int i = 0; i < exact.Length; i++)
                exact[i] ??= reselect(i);
            CombineAll(tiles, exact!, weights, combiner.Election, output, parallel);
            return;
        }
        // Only entries inside a bracket can have been decided otherwise than the exact cut decides them.
        int words = (int)(((long)tiles.Rows * tiles.Columns + 63) / 64);
        var changed = ArrayPool<ulong>.Shared.Rent(words);
        try
        {
            Mark(changed, words, bracketed, provisional, exact!, parallel);
            RecombineMarked(tiles, exact!, weights, combiner.Election, changed, words, output, parallel);
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(changed);
        }
    }

    // Every row block, in parallel; where brackets are given, each sampled adapter's entries counted against its own;
    // where drops are given, band after band of blocks, each band's outcomes drawn first.
    private static MagnitudeCut.BracketCount?[] CombineAll(UpdateTiles tiles, MagnitudeCut[] cuts, float[] weights, MajoritySign? election, float* output,
        ParallelOptions parallel, CombinationWorkspace? workspace = null, MagnitudeCut.SampledCut?[]? brackets = null, TileDrops? drops = null)
    {
        int blocks = (tiles.PaddedRows + BlockRows - 1) / BlockRows;
        int bandBlocks = drops is null ? blocks : drops.BandRows / BlockRows;
        var found = new List<Inside?[]>();
        nint target = (nint)output;
        for (int firstBlock = 0; firstBlock < blocks; firstBlock += bandBlocks)
        {
            drops?.Draw(firstBlock * BlockRows, parallel);
            Parallel.For(firstBlock, Math.Min(blocks, firstBlock + bandBlocks), parallel,
                () => brackets?.Select(b => b is null ? null : workspace!.Rent<Inside>().Cleared()).ToArray() ?? [], (block, _, inside) =>
                {
                    CombineRows(tiles, cuts, weights, election, block * BlockRows, (float*)target, brackets, inside, drops);
                    return inside;
                }, inside =>
                {
                    lock (found)
                        found.Add(inside);
                });
        }
        var counts = Enumerable.Range(0, tiles.Count)
            .Select(i => brackets?[i] is null ? null : Gather(found.Select(f => f[i]!).ToList(), workspace?.Kept, i))
            .ToArray();
        foreach (var inside in found.SelectMany(f => f).OfType<Inside>())
            workspace!.Return(inside);
        return counts;
    }

    // The entries inside a bracket found by one thread, in arrays it grows (kept by the workspace from module to module).
    private sealed class Inside
    {
        public long Above;
        public int Count;
        public float[] Magnitudes = [];
        public long[] Indices = [];

        public Inside Cleared()
        {
            Above = 0;
            Count = 0;
            return this;
        }

        /// <summary>Room for <paramref name="more"/> entries after the first <see cref="Count"/>.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Reserve(int more)
        {
            if (Count + more > Magnitudes.Length)
                Grow(Count + more);
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private void Grow(int needed)
        {
            int capacity = Math.Max(needed, 2 * Magnitudes.Length);
            Array.Resize(ref Magnitudes, capacity);
            Array.Resize(ref Indices, capacity);
        }
    }

    // One pass over an adapter's entries: how many lie above [lo, hi], and those inside it.
    private static MagnitudeCut.BracketCount Count(UpdateTiles tiles, int adapter, float lo, float hi, ParallelOptions parallel)
    {
        var found = new List<Inside>();
        int blocks = (tiles.PaddedRows + BlockRows - 1) / BlockRows;
        Parallel.For(0, blocks, parallel, () => new Inside(), (block, _, inside) =>
        {
            CountRows(tiles, adapter, lo, hi, block * BlockRows, inside);
            return inside;
        }, inside =>
        {
            lock (found)
                found.Add(inside);
        });
        return Gather(found);
    }

    // The entries inside, in adapter `adapter`'s kept arrays where there are some (a few MB a module).
    private static MagnitudeCut.BracketCount Gather(List<Inside> found, KeptArrays? kept = null, int adapter = 0)
    {
        int count = found.Sum(f => f.Count);
        var magnitudes = kept.GetOrNew<float>("bracket.magnitudes", count, adapter);
        var indices = kept.GetOrNew<long>("bracket.indices", count, adapter);
        int at = 0;
        foreach (var f in found)
        {
            f.Magnitudes.AsSpan(0, f.Count).CopyTo(magnitudes.AsSpan(at));
            f.Indices.AsSpan(0, f.Count).CopyTo(indices.AsSpan(at));
            at += f.Count;
        }
        return new MagnitudeCut.BracketCount(magnitudes.AsMemory(0, count), indices.AsMemory(0, count), found.Sum(f => f.Above));
    }

    private static void CountRows(UpdateTiles tiles, int adapter, float lo, float hi, int firstRow, Inside inside)
    {
        if (tiles.Wide)
            CountRows<FloatVector512>(tiles, adapter, lo, hi, firstRow, inside);
        else
            CountRows<FloatVector256>(tiles, adapter, lo, hi, firstRow, inside);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CountRows<TVector>(UpdateTiles tiles, int adapter, float lo, float hi, int firstRow, Inside inside)
        where TVector : struct, IFloatVector<TVector>
    {
        var tile = stackalloc float[UpdateTiles.TileFloats];
        var between = stackalloc uint[UpdateTiles.TileFloats / TVector.Count];
        int endRow = Math.Min(firstRow + BlockRows, tiles.PaddedRows);
        for (int row = firstRow; row < endRow; row += UpdateTiles.TileRows)
            for (int column = 0; column < tiles.PaddedColumns; column += UpdateTiles.TileColumns)
            {
                tiles.Tile(adapter, row, column, tile);
                // Trimming the scratch tile at minus infinity changes nothing that is counted.
                CountAndTrimTile<TVector>(tiles, tile, lo, hi, float.NegativeInfinity, IsWhole(tiles, row, column), row, column, inside, between);
            }
    }

    // The trimming and the combination run on 512-bit vectors where the core has them at full width: they are as
    // many instructions per entry as the tiles' multiply-adds, and the same lane operations give the same bits.
    private static void CombineRows(UpdateTiles tiles, MagnitudeCut[] cuts, float[] weights, MajoritySign? election, int firstRow, float* output,
        MagnitudeCut.SampledCut?[]? brackets, Inside?[] inside, TileDrops? drops)
    {
        if (tiles.Wide)
            CombineRows<FloatVector512, Panel512>(tiles, cuts, weights, election, firstRow, output, brackets, inside, drops);
        else
            CombineRows<FloatVector256, Panel256>(tiles, cuts, weights, election, firstRow, output, brackets, inside, drops);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CombineRows<TVector, TPanel>(UpdateTiles tiles, MagnitudeCut[] cuts, float[] weights, MajoritySign? election, int firstRow, float* output,
        MagnitudeCut.SampledCut?[]? brackets, Inside?[] inside, TileDrops? drops) where TVector : struct, IFloatVector<TVector> where TPanel : struct, IFloatPanel<TPanel>
    {
        int n = tiles.Count;
        var trimmed = stackalloc float[n * UpdateTiles.TileFloats];
        var between = stackalloc uint[UpdateTiles.TileFloats / TVector.Count];
        int endRow = Math.Min(firstRow + BlockRows, tiles.PaddedRows);
        for (int firstColumn = 0; firstColumn < tiles.PaddedColumns; firstColumn += BlockColumns)
        {
            int endColumn = Math.Min(firstColumn + BlockColumns, tiles.PaddedColumns);
            for (int row = firstRow; row < endRow; row += UpdateTiles.TileRows)
                for (int column = firstColumn; column < endColumn; column += UpdateTiles.TileColumns)
                {
                    bool whole = IsWhole(tiles, row, column);
                    for (int i = 0; i < n; i++)
                    {
                        var tile = trimmed + i * UpdateTiles.TileFloats;
                        tiles.Tile<TPanel>(i, row, column, tile);
                        if (drops is not null)
                        {
                            drops.Apply(i, row, column, (Vector256<float>*)tile);
                            continue;
                        }
                        if (brackets?[i] is { } bracket)
                            CountAndTrimTile<TVector>(tiles, tile, bracket.Lo, bracket.Hi, cuts[i].Threshold, whole, row, column, inside[i]!, between);
                        else if (!TrimTile<TVector>(tile, cuts[i]))
                        {
                            tiles.Tile(i, row, column, tile);
                            TrimTileWithTies(tiles, tile, cuts[i], row, column);
                        }
                    }
                    for (int e = 0; e < UpdateTiles.TileFloats; e += TVector.Count)
                    {
                        var value = Combination<TVector>(trimmed + e, UpdateTiles.TileFloats, n, weights, election);
                        float* target = output + FlatIndex(tiles, row, column, e);
                        if (whole)
                            value.Store(target);
                        else
                            for (int lane = 0; lane < BitOperations.PopCount(ValidLanes(tiles, row, column, e, TVector.Count)); lane++)
                                target[lane] = value[lane];
                    }
                }
        }
    }

    // Trims a tile in place at the cut; false, with the tile's entries undefined, where an entry equals a threshold whose
    // ties the cut keeps (the k-th largest itself, about once per adapter and module): its tie rule must decide them.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TrimTile<TVector>(float* tile, MagnitudeCut cut) where TVector : struct, IFloatVector<TVector>
    {
        bool tied = TrimAt<TVector>(tile, cut.Threshold);
        return cut.LastTie < 0 || !tied;
    }

    // Zeroes the tile's entries of magnitude at most the threshold; whether one equals it.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TrimAt<TVector>(float* tile, float threshold) where TVector : struct, IFloatVector<TVector>
    {
        var cut = TVector.Create(threshold);
        var tied = TVector.Create(0);
        for (int e = 0; e < UpdateTiles.TileFloats; e += TVector.Count)
        {
            var entries = TVector.Load(tile + e);
            var magnitude = entries.Abs();
            tied |= magnitude.EqualTo(cut);
            (entries & magnitude.GreaterThan(cut)).Store(tile + e);
        }
        return tied.MostSignificantBits() != 0;
    }

    // A sampled adapter's tile counted against its bracket and trimmed at its provisional cut (which keeps no ties) in one
    // sweep (the counting passes trim nothing): the entries above the bracket counted (the padding's zeros are never
    // above a magnitude), those inside marked in `between` (a lane mask per vector) and collected.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CountAndTrimTile<TVector>(UpdateTiles tiles, float* tile, float lo, float hi, float cut, bool whole, int row, int column,
        Inside inside, uint* between) where TVector : struct, IFloatVector<TVector>
    {
        var low = TVector.Create(lo);
        var high = TVector.Create(hi);
        int above = 0;
        uint anyInside = 0;
        for (int e = 0; e < UpdateTiles.TileFloats; e += TVector.Count)
        {
            var magnitude = TVector.Load(tile + e).Abs();
            uint over = magnitude.GreaterThan(high).MostSignificantBits();
            above += BitOperations.PopCount(over);
            uint lanes = magnitude.GreaterThanOrEqual(low).MostSignificantBits() & ~over;
            between[e / TVector.Count] = lanes;
            anyInside |= lanes;
        }
        inside.Above += above;
        if (anyInside != 0)
        {
            // Collected before the trim, without a call: a call in the caller's loop would make it keep its vectors on the stack.
            inside.Reserve(UpdateTiles.TileFloats);
            int added = inside.Count;
            fixed (float* magnitudes = inside.Magnitudes)
            fixed (long* indices = inside.Indices)
                for (int e = 0; e < UpdateTiles.TileFloats; e += TVector.Count)
                {
                    uint marked = between[e / TVector.Count] & (whole ? uint.MaxValue : ValidLanes(tiles, row, column, e, TVector.Count));
                    for (long first = FlatIndex(tiles, row, column, e); marked != 0; marked &= marked - 1, added++)
                    {
                        int lane = BitOperations.TrailingZeroCount(marked);
                        magnitudes[added] = MathF.Abs(tile[e + lane]);
                        indices[added] = first + lane;
                    }
                }
            inside.Count = added;
        }
        TrimAt<TVector>(tile, cut);
    }

    // Entry by entry: the cut's tie rule needs each tied entry's flat index, and this runs about once per adapter and module.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void TrimTileWithTies(UpdateTiles tiles, float* tile, MagnitudeCut cut, int row, int column)
    {
        for (int e = 0; e < UpdateTiles.TileFloats; e++)
            if (!cut.Keeps(MathF.Abs(tile[e]), FlatIndex(tiles, row, column, e)))
                tile[e] = 0;
    }

    // The flat index of entry e (row-major) of the tile at (row, column). Inlined: CombineRows, with the tile kernel
    // inlined into it, is past the JIT's own inlining budget, and a call per stored vector was 2.6 % of a TiesSvd.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long FlatIndex(UpdateTiles tiles, int row, int column, int e) =>
        (long)(row + e / UpdateTiles.TileColumns) * tiles.Columns + column + e % UpdateTiles.TileColumns;

    // The result entries holding an in-bracket value that the exact cut decides otherwise than the provisional one, as
    // a bitmap over the flat indices (an entry marked by several adapters is marked once).
    private static void Mark(ulong[] bitmap, int words, MagnitudeCut.BracketCount?[] bracketed, MagnitudeCut[] provisional, MagnitudeCut[] exact,
        ParallelOptions parallel)
    {
        Array.Clear(bitmap, 0, words);
        var parts = Enumerable.Range(0, bracketed.Length).Where(i => bracketed[i] is not null)
            .SelectMany(i => Chunks(bracketed[i]!.Indices.Length).Select(chunk => (Adapter: i, chunk.Start, chunk.End))).ToArray();
        Parallel.ForEach(parts, parallel, part =>
        {
            var magnitudes = bracketed[part.Adapter]!.Magnitudes.Span;
            var indices = bracketed[part.Adapter]!.Indices.Span;
            var (before, after) = (provisional[part.Adapter], exact[part.Adapter]);
            for (int j = part.Start; j < part.End; j++)
            {
                long index = indices[j];
                if (before.Keeps(magnitudes[j], index) != after.Keeps(magnitudes[j], index))
                    Interlocked.Or(ref bitmap[index >> 6], 1UL << (int)(index & 63));
            }
        });
    }

    private const int ChunkEntries = 1 << 16;

    private static IEnumerable<(int Start, int End)> Chunks(int count)
    {
        for (int start = 0; start < count; start += ChunkEntries)
            yield return (start, Math.Min(count, start + ChunkEntries));
    }

    // The marked entries again, each range of bitmap words by one thread (an entry's value does not depend on which
    // thread or group of 8 computes it).
    private static void RecombineMarked(UpdateTiles tiles, MagnitudeCut[] cuts, float[] weights, MajoritySign? election, ulong[] marked, int words,
        float* output, ParallelOptions parallel)
    {
        nint target = (nint)output;
        Parallel.ForEach(Chunks(words), parallel, () => new List<long>(), (range, _, indices) =>
        {
            indices.Clear();
            for (int w = range.Start; w < range.End; w++)
                for (ulong bits = marked[w]; bits != 0; bits &= bits - 1)
                    indices.Add(((long)w << 6) + BitOperations.TrailingZeroCount(bits));
            RecombineEntries(tiles, cuts, weights, election, CollectionsMarshal.AsSpan(indices), (float*)target);
            return indices;
        }, _ => { });
    }

    // The given entries again, 8 at a time, each adapter's entry at its exact cut (flat indices, distinct).
    private static void RecombineEntries(UpdateTiles tiles, MagnitudeCut[] cuts, float[] weights, MajoritySign? election, ReadOnlySpan<long> indices, float* output)
    {
        int n = tiles.Count;
        int lanes = FloatVector256.Count;
        var trimmed = stackalloc float[n * lanes];
        var at = stackalloc long[lanes];
        var rows = stackalloc int[lanes];
        var columns = stackalloc int[lanes];
        for (int first = 0; first < indices.Length; first += lanes)
        {
            int count = Math.Min(lanes, indices.Length - first);
            // Short groups repeat their last entry in the spare lanes.
            for (int lane = 0; lane < lanes; lane++)
            {
                at[lane] = indices[first + Math.Min(lane, count - 1)];
                rows[lane] = (int)(at[lane] / tiles.Columns);
                columns[lane] = (int)(at[lane] % tiles.Columns);
            }
            for (int i = 0; i < n; i++)
            {
                var entries = tiles.Entries(i, rows, columns);
                var magnitude = Vector256.Abs(entries);
                var threshold = Vector256.Create(cuts[i].Threshold);
                var keep = Vector256.GreaterThan(magnitude, threshold);
                if (Vector256.EqualsAny(magnitude, threshold))
                    keep = KeepTies(keep, magnitude, cuts[i], at);
                (entries & keep).Store(trimmed + i * lanes);
            }
            var value = Combination<FloatVector256>(trimmed, lanes, n, weights, election);
            for (int lane = 0; lane < count; lane++)
                output[at[lane]] = value[lane];
        }
    }

    // Entries equal to the threshold: only those the cut's tie rule keeps (the k-th itself, almost always); lane i's flat index is indices[i].
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vector256<float> KeepTies(Vector256<float> keep, Vector256<float> magnitude, MagnitudeCut cut, long* indices)
    {
        for (int lane = 0; lane < Vector256<float>.Count; lane++)
            if (magnitude.GetElement(lane) == cut.Threshold && cut.Keeps(cut.Threshold, indices[lane]))
                keep = keep.WithElement(lane, BitConverter.Int32BitsToSingle(-1));
        return keep;
    }

    // Each adapter's trimmed entries at trimmed + i * stride.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVector Combination<TVector>(float* trimmed, int stride, int n, float[] weights, MajoritySign? election)
        where TVector : struct, IFloatVector<TVector> =>
        election is { } method ? DisjointMean<TVector>(trimmed, stride, n, weights, method == MajoritySign.Total) : WeightedSum<TVector>(trimmed, stride, n, weights);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVector WeightedSum<TVector>(float* trimmed, int stride, int n, float[] weights) where TVector : struct, IFloatVector<TVector>
    {
        var sum = TVector.Create(0);
        for (int i = 0; i < n; i++)
            sum += TVector.Load(trimmed + i * stride) * TVector.Create(weights[i]);
        return sum;
    }

    // SignElection's rule: the elected sign from the unweighted trimmed entries (their sum, or their signs' sum), then
    // the mean of the weighted entries of that sign; a zero entry never agrees. Signs and agreeing entries are counted
    // in float lanes (exact: at most the adapter count) by adding 1 under each comparison's mask, and an entry agrees
    // where it is positive after the elected sign is flipped onto it: the same decisions as choosing between two
    // comparisons by the elected sign, in fewer operations.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVector DisjointMean<TVector>(float* trimmed, int stride, int n, float[] weights, bool total) where TVector : struct, IFloatVector<TVector>
    {
        var zero = TVector.Create(0);
        var one = TVector.Create(1);
        var votes = zero;
        if (total)
            for (int i = 0; i < n; i++)
                votes += TVector.Load(trimmed + i * stride);
        else
            for (int i = 0; i < n; i++)
            {
                var t = TVector.Load(trimmed + i * stride);
                votes += (t.GreaterThan(zero) & one) - (t.LessThan(zero) & one);
            }
        var flip = TVector.Create(-0.0f).Except(votes.GreaterThanOrEqual(zero));
        var kept = zero;
        var count = zero;
        for (int i = 0; i < n; i++)
        {
            var t = TVector.Load(trimmed + i * stride);
            var agree = (t ^ flip).GreaterThan(zero);
            kept += t * TVector.Create(weights[i]) & agree;
            count += one & agree;
        }
        return kept / count.Max(one);
    }

    private static bool IsWhole(UpdateTiles tiles, int row, int column) =>
        row + UpdateTiles.TileRows <= tiles.Rows && column + UpdateTiles.TileColumns <= tiles.Columns;

    // The lanes of a vector of `lanes` entries from entry e of the tile at (row, column) that lie inside the result.
    private static uint ValidLanes(UpdateTiles tiles, int row, int column, int e, int lanes)
    {
        int r = row + e / UpdateTiles.TileColumns, c = column + e % UpdateTiles.TileColumns;
        return r >= tiles.Rows || c >= tiles.Columns ? 0u : (uint)((1UL << Math.Min(lanes, tiles.Columns - c)) - 1);
    }
}
