using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LoraLego.Core.Merging;

/// <summary>
/// DARE's drops inside <see cref="FusedCombination"/>: every task's outcomes for a band of rows drawn ahead as bits
/// (one per entry, each row padded to whole tiles), each task from its own <see cref="DropStream"/>, so the tasks are
/// drawn side by side and a band holds exactly the outcomes the whole-tensor drop draws for those entries; then applied
/// to update tiles as the tensor drop applies them: the product with the 0/1 outcome, then the float32 quotient by
/// density, so a dropped entry has the tensor drop's bits. A band is about 4M entries a task whatever the shape, so the
/// masks never take a whole module's memory.
/// </summary>
internal sealed unsafe class TileDrops : IDisposable
{
    private const long BandEntries = 1 << 22;

    // Outcome byte -> its 8 outcomes as 0 or 1 floats, lane j from bit j.
    private static readonly Vector256<float>[] Outcomes = Enumerable.Range(0, 256)
        .Select(b => Vector256.Create(Enumerable.Range(0, UpdateTiles.Lanes).Select(j => (float)((b >> j) & 1)).ToArray()))
        .ToArray();

    private readonly UpdateTiles tiles;
    private readonly IReadOnlyList<DropStream> streams;
    private readonly byte[][] bits;
    private readonly int rowBytes;
    private int firstRow;

    private TileDrops(UpdateTiles tiles, IReadOnlyList<DropStream> streams, int bandRows)
    {
        this.tiles = tiles;
        this.streams = streams;
        BandRows = bandRows;
        rowBytes = tiles.PaddedColumns / 8;
        bits = streams.Select(s => s.Drops ? ArrayPool<byte>.Shared.Rent(bandRows * rowBytes) : []).ToArray();
    }

    /// <summary>Rows per band: a multiple of the row blocks <see cref="For"/> was given (the combination's row blocks never straddle two bands).</summary>
    public int BandRows { get; }

    /// <summary>The drops of <paramref name="tiles"/>' tasks, in bands of whole row blocks of <paramref name="blockRows"/>.</summary>
    public static TileDrops For(UpdateTiles tiles, IReadOnlyList<DropStream> streams, int blockRows)
    {
        long blocks = Math.Max(1, BandEntries / ((long)blockRows * tiles.PaddedColumns));
        int paddedBlocks = (tiles.PaddedRows + blockRows - 1) / blockRows;
        return new TileDrops(tiles, streams, (int)Math.Min(blocks, paddedBlocks) * blockRows);
    }

    /// <summary>Draws the outcomes of rows [<paramref name="first"/>, first + BandRows), the bands in row order, each once.</summary>
    public void Draw(int first, ParallelOptions parallel)
    {
        firstRow = first;
        int end = Math.Min(tiles.Rows, first + BandRows);
        Parallel.For(0, streams.Count, parallel, i =>
        {
            if (!streams[i].Drops)
                return;
            for (int row = first; row < end; row++)
                streams[i].DrawBits(tiles.Columns, bits[i].AsSpan((row - first) * rowBytes, rowBytes));
        });
    }

    /// <summary>
    /// Task <paramref name="task"/>'s tile at (<paramref name="row"/>, <paramref name="column"/>), inside the band drawn
    /// last, dropped and rescaled in place (the padding's entries are 0 and stay 0).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Apply(int task, int row, int column, Vector256<float>* tile)
    {
        if (!streams[task].Drops)
            return;
        var divisor = Vector256.Create(streams[task].Divisor);
        fixed (byte* band = bits[task])
        {
            byte* outcomes = band + (row - firstRow) * rowBytes + column / 8;
            for (int v = 0; v < UpdateTiles.TileVectors; v++)
                tile[v] = tile[v] * Outcomes[outcomes[v / UpdateTiles.RowVectors * rowBytes + v % UpdateTiles.RowVectors]] / divisor;
        }
    }

    public void Dispose()
    {
        foreach (var band in bits.Where(b => b.Length > 0))
            ArrayPool<byte>.Shared.Return(band);
    }
}
