using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// <see cref="TiledCombination"/> for magnitude trimming (or none) on the CPU, fused into SIMD passes that compute every
/// update entry in registers (<see cref="UpdateTiles"/>) and never store one: per adapter, a counting pass finds its
/// exact magnitude cut (entries above a sampled bracket counted, the few inside it collected and selected from); then
/// one pass trims the adapters' entries, elects signs, and writes the weighted sum or disjoint mean. Row blocks run in
/// parallel; each result entry is computed by one thread in a fixed order, so the result's bytes do not depend on the
/// thread count.
/// </summary>
internal static unsafe class FusedCombination
{
    // 64 rows by 256 columns per step: the 8 adapters' A columns of a step (128 KiB) stay in L2 while the rows pass.
    private const int BlockRows = 64;
    private const int BlockColumns = 256;

    /// <summary>
    /// Whether the fused passes compute this combination: CPU tensors, no random drop (its draws are libtorch's), vector
    /// hardware, and a result TorchSharp can expose as one span (under 2 GiB).
    /// </summary>
    public static bool Covers(ModuleInputs inputs, TaskCombiner combiner) =>
        combiner.Trimming != Trimming.RandomDrop && inputs.Members[0].A.device_type == TorchSharp.DeviceType.CPU && UpdateTiles.IsAccelerated
        && inputs.Members[0].OutFeatures * inputs.Members[0].InFeatures <= int.MaxValue / sizeof(float);

    /// <summary>The combined out x in update (float32, CPU), equal to <see cref="TaskCombiner.Combine"/> on the dense updates.</summary>
    public static Tensor Combine(ModuleInputs inputs, TaskCombiner combiner, int threads)
    {
        var tiles = UpdateTiles.Of(inputs.Members);
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads) };
        var cuts = Enumerable.Repeat(MagnitudeCut.KeepAll, tiles.Count).ToArray();
        if (combiner.Trimming == Trimming.Magnitude)
        {
            // Adapters side by side, so their serial steps (sample, selection) overlap; each count pass takes the threads left over.
            var within = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads / tiles.Count) };
            Parallel.For(0, tiles.Count, parallel, i => cuts[i] = Cut(tiles, i, inputs.Members[i].Density, within));
        }
        // PEFT makes a float32 tensor of the weights; doing the same keeps the rounding alike.
        var weights = inputs.Members.Select(m => (float)m.Weight).ToArray();
        var combined = empty(tiles.Rows, tiles.Columns, ScalarType.Float32);
        int blocks = (tiles.PaddedRows + BlockRows - 1) / BlockRows;
        fixed (byte* bytes = combined.bytes)
        {
            nint output = (nint)bytes;
            Parallel.For(0, blocks, parallel, block => CombineRows(tiles, cuts, weights, combiner.Election, block * BlockRows, (float*)output));
        }
        return combined;
    }

    private static MagnitudeCut Cut(UpdateTiles tiles, int adapter, double density, ParallelOptions parallel) =>
        MagnitudeCut.Find((long)tiles.Rows * tiles.Columns, density,
            indices => Array.ConvertAll(indices, index => tiles.Magnitude(adapter, index)),
            (lo, hi) => Count(tiles, adapter, lo, hi, parallel));

    private sealed class Inside
    {
        public long Above;
        public readonly List<float> Magnitudes = [];
        public readonly List<long> Indices = [];
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
        var magnitudes = new float[found.Sum(f => f.Magnitudes.Count)];
        var indices = new long[magnitudes.Length];
        int at = 0;
        foreach (var f in found)
        {
            CollectionsMarshal.AsSpan(f.Magnitudes).CopyTo(magnitudes.AsSpan(at));
            CollectionsMarshal.AsSpan(f.Indices).CopyTo(indices.AsSpan(at));
            at += f.Magnitudes.Count;
        }
        return new MagnitudeCut.BracketCount(magnitudes, indices, found.Sum(f => f.Above));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CountRows(UpdateTiles tiles, int adapter, float lo, float hi, int firstRow, Inside inside)
    {
        var tile = stackalloc Vector256<float>[UpdateTiles.TileVectors];
        var low = Vector256.Create(lo);
        var high = Vector256.Create(hi);
        int endRow = Math.Min(firstRow + BlockRows, tiles.PaddedRows);
        long above = 0;
        for (int row = firstRow; row < endRow; row += UpdateTiles.TileRows)
            for (int column = 0; column < tiles.PaddedColumns; column += UpdateTiles.TileColumns)
            {
                tiles.Tile(adapter, row, column, tile);
                bool whole = IsWhole(tiles, row, column);
                for (int v = 0; v < UpdateTiles.TileVectors; v++)
                {
                    uint valid = whole ? 0xFFu : ValidLanes(tiles, row + v / UpdateTiles.RowVectors, column + UpdateTiles.Lanes * (v % UpdateTiles.RowVectors));
                    var magnitude = Vector256.Abs(tile[v]);
                    above += BitOperations.PopCount(Vector256.ExtractMostSignificantBits(Vector256.GreaterThan(magnitude, high)) & valid);
                    uint between = Vector256.ExtractMostSignificantBits(Vector256.GreaterThanOrEqual(magnitude, low) & Vector256.LessThanOrEqual(magnitude, high)) & valid;
                    if (between != 0)
                        Collect(magnitude, between, (long)(row + v / UpdateTiles.RowVectors) * tiles.Columns + column + UpdateTiles.Lanes * (v % UpdateTiles.RowVectors), inside);
                }
            }
        inside.Above += above;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Collect(Vector256<float> magnitude, uint lanes, long firstIndex, Inside inside)
    {
        for (; lanes != 0; lanes &= lanes - 1)
        {
            int lane = BitOperations.TrailingZeroCount(lanes);
            inside.Magnitudes.Add(magnitude.GetElement(lane));
            inside.Indices.Add(firstIndex + lane);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CombineRows(UpdateTiles tiles, MagnitudeCut[] cuts, float[] weights, MajoritySign? election, int firstRow, float* output)
    {
        int n = tiles.Count;
        var trimmed = stackalloc Vector256<float>[n * UpdateTiles.TileVectors];
        int endRow = Math.Min(firstRow + BlockRows, tiles.PaddedRows);
        for (int firstColumn = 0; firstColumn < tiles.PaddedColumns; firstColumn += BlockColumns)
        {
            int endColumn = Math.Min(firstColumn + BlockColumns, tiles.PaddedColumns);
            for (int row = firstRow; row < endRow; row += UpdateTiles.TileRows)
                for (int column = firstColumn; column < endColumn; column += UpdateTiles.TileColumns)
                {
                    for (int i = 0; i < n; i++)
                    {
                        var tile = trimmed + i * UpdateTiles.TileVectors;
                        tiles.Tile(i, row, column, tile);
                        var threshold = Vector256.Create(cuts[i].Threshold);
                        for (int v = 0; v < UpdateTiles.TileVectors; v++)
                        {
                            var magnitude = Vector256.Abs(tile[v]);
                            var keep = Vector256.GreaterThan(magnitude, threshold);
                            if (Vector256.EqualsAny(magnitude, threshold))
                                keep = KeepTies(keep, magnitude, cuts[i], (long)(row + v / UpdateTiles.RowVectors) * tiles.Columns + column + UpdateTiles.Lanes * (v % UpdateTiles.RowVectors));
                            tile[v] &= keep;
                        }
                    }
                    bool whole = IsWhole(tiles, row, column);
                    for (int v = 0; v < UpdateTiles.TileVectors; v++)
                    {
                        int r = row + v / UpdateTiles.RowVectors, c = column + UpdateTiles.Lanes * (v % UpdateTiles.RowVectors);
                        var value = election is { } method ? DisjointMean(trimmed + v, n, weights, method == MajoritySign.Total) : WeightedSum(trimmed + v, n, weights);
                        float* target = output + (long)r * tiles.Columns + c;
                        if (whole)
                            value.Store(target);
                        else
                            for (int lane = 0; lane < BitOperations.PopCount(ValidLanes(tiles, r, c)); lane++)
                                target[lane] = value.GetElement(lane);
                    }
                }
        }
    }

    // Entries equal to the threshold: only those the cut's tie rule keeps (the k-th itself, almost always).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vector256<float> KeepTies(Vector256<float> keep, Vector256<float> magnitude, MagnitudeCut cut, long firstIndex)
    {
        for (int lane = 0; lane < UpdateTiles.Lanes; lane++)
            if (magnitude.GetElement(lane) == cut.Threshold && cut.Keeps(cut.Threshold, firstIndex + lane))
                keep = keep.WithElement(lane, BitConverter.Int32BitsToSingle(-1));
        return keep;
    }

    // Vector v of each adapter's trimmed tile: TileVectors vectors apart.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> WeightedSum(Vector256<float>* trimmed, int n, float[] weights)
    {
        var sum = Vector256<float>.Zero;
        for (int i = 0; i < n; i++)
            sum += trimmed[i * UpdateTiles.TileVectors] * Vector256.Create(weights[i]);
        return sum;
    }

    // SignElection's rule: the elected sign from the unweighted trimmed entries (their sum, or their signs' sum), then
    // the mean of the weighted entries of that sign; a zero entry never agrees.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> DisjointMean(Vector256<float>* trimmed, int n, float[] weights, bool total)
    {
        var zero = Vector256<float>.Zero;
        var one = Vector256<float>.One;
        var votes = zero;
        for (int i = 0; i < n; i++)
        {
            var t = trimmed[i * UpdateTiles.TileVectors];
            votes += total ? t : (Vector256.GreaterThan(t, zero) & one) - (Vector256.LessThan(t, zero) & one);
        }
        var positive = Vector256.GreaterThanOrEqual(votes, zero);
        var kept = zero;
        var count = zero;
        for (int i = 0; i < n; i++)
        {
            var t = trimmed[i * UpdateTiles.TileVectors];
            var agree = Vector256.ConditionalSelect(positive, Vector256.GreaterThan(t, zero), Vector256.LessThan(t, zero));
            kept += t * Vector256.Create(weights[i]) & agree;
            count += one & agree;
        }
        return kept / Vector256.Max(count, one);
    }

    private static bool IsWhole(UpdateTiles tiles, int row, int column) =>
        row + UpdateTiles.TileRows <= tiles.Rows && column + UpdateTiles.TileColumns <= tiles.Columns;

    private static uint ValidLanes(UpdateTiles tiles, int row, int column) =>
        row >= tiles.Rows || column >= tiles.Columns ? 0u : tiles.Columns - column >= 8 ? 0xFFu : (1u << (tiles.Columns - column)) - 1;
}
