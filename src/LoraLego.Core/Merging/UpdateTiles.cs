using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LoraLego.Core.Compute;
using LoraLego.Core.Formats;

namespace LoraLego.Core.Merging;

/// <summary>
/// The updates scaling * B @ A of one module's adapters, computed tile by tile in registers and never stored: a tile is
/// <see cref="TileRows"/> rows by <see cref="TileColumns"/> columns of one adapter's update, each entry a rank-r dot
/// product in float32 (fused multiply-adds, k = 0 .. r-1 in order), so an entry has the same bits whichever pass or
/// thread computes it. The factors are copied once into float32 arrays padded with zeros to whole tiles.
/// </summary>
internal sealed unsafe class UpdateTiles
{
    public const int TileRows = 4;

    public const int Lanes = 8;

    /// <summary>A panel per tile row (<see cref="Tile{TPanel}"/> accumulates each row in one).</summary>
    public const int TileColumns = FloatPanel.Floats;

    /// <summary>Vectors of <see cref="Lanes"/> entries per tile row.</summary>
    public const int RowVectors = TileColumns / Lanes;

    /// <summary>Vectors per tile: vector v holds row v / RowVectors, columns Lanes * (v % RowVectors) onwards.</summary>
    public const int TileVectors = TileRows * RowVectors;

    /// <summary>Entries per tile, row-major.</summary>
    public const int TileFloats = TileRows * TileColumns;

    // Per adapter: A (rank x PaddedColumns), B (PaddedRows x rank), A transposed (Columns x rank, for single entries),
    // in pinned arrays (held here, so they live as long as the tiles), read through addresses taken once so that the
    // kernel inlined into the passes needs no `fixed` per tile.
    private readonly float[][] a, b, aT;
    private readonly nint[] aAt, bAt, aTAt;
    private readonly int[] ranks;
    private readonly float[] scalings;

    private UpdateTiles(IReadOnlyList<ModuleMember> members, bool wide, KeptArrays? kept)
    {
        Wide = wide;
        Count = members.Count;
        Rows = checked((int)members[0].OutFeatures);
        Columns = checked((int)members[0].InFeatures);
        PaddedRows = (Rows + TileRows - 1) / TileRows * TileRows;
        PaddedColumns = (Columns + TileColumns - 1) / TileColumns * TileColumns;
        ranks = members.Select(m => (int)m.Rank).ToArray();
        scalings = members.Select(m => (float)m.Scaling).ToArray();
        a = new float[Count][];
        b = new float[Count][];
        aT = new float[Count][];
        for (int i = 0; i < Count; i++)
        {
            int r = ranks[i];
            // Read in place from the factors' own memory: a managed copy of each was a megabyte of garbage per adapter and module.
            using var contiguousA = TensorBytes.ContiguousOnCpu(members[i].A);
            using var contiguousB = TensorBytes.ContiguousOnCpu(members[i].B);
            var factorA = MemoryMarshal.Cast<byte, float>(contiguousA.bytes);
            a[i] = kept.GetOrNew<float>("tiles.a", r * PaddedColumns, i);
            for (int k = 0; k < r; k++)
            {
                factorA.Slice(k * Columns, Columns).CopyTo(a[i].AsSpan(k * PaddedColumns));
                a[i].AsSpan(k * PaddedColumns + Columns, PaddedColumns - Columns).Clear();
            }
            b[i] = kept.GetOrNew<float>("tiles.b", PaddedRows * r, i);
            MemoryMarshal.Cast<byte, float>(contiguousB.bytes).CopyTo(b[i]);
            b[i].AsSpan(Rows * r, (PaddedRows - Rows) * r).Clear();
            aT[i] = kept.GetOrNew<float>("tiles.aT", Columns * r, i);
            for (int k = 0; k < r; k++)
                for (int j = 0; j < Columns; j++)
                    aT[i][j * r + k] = factorA[k * Columns + j];
        }
        aAt = a.Select(Address).ToArray();
        bAt = b.Select(Address).ToArray();
        aTAt = aT.Select(Address).ToArray();
    }

    private static nint Address(float[] pinned) => (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned));

    /// <summary>Where the kernel runs at full speed: 256-bit vectors, fused multiply-adds and gathers in hardware (x86 with AVX2 and FMA).</summary>
    public static bool IsAccelerated => Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Whether the kernels over these tiles run on 512-bit vectors (the bits are the same either way).</summary>
    public bool Wide { get; }

    public int Count { get; }

    public int Rows { get; }

    public int Columns { get; }

    public int PaddedRows { get; }

    public int PaddedColumns { get; }

    /// <summary>
    /// The float32 factors of <paramref name="members"/> (same out x in), laid out for the kernel; <paramref name="wide"/>
    /// lets the kernels use 512-bit vectors where the core has them (false: 256-bit ones, for tests that compare the two);
    /// the factors are laid out in <paramref name="kept"/>'s arrays where given (valid until its next tiles).
    /// </summary>
    public static UpdateTiles Of(IReadOnlyList<ModuleMember> members, bool wide, KeptArrays? kept = null) => new(members, wide && FloatPanel.Wide, kept);

    /// <summary>
    /// Adapter <paramref name="adapter"/>'s tile at rows [row, row + TileRows), columns [column, column + TileColumns),
    /// into <paramref name="tile"/> (<see cref="TileFloats"/> entries, row-major). Entries of the padding are 0.
    /// </summary>
    public void Tile(int adapter, int row, int column, float* tile)
    {
        if (Wide)
            Tile<Panel512>(adapter, row, column, tile);
        else
            Tile<Panel256>(adapter, row, column, tile);
    }

    // A panel per tile row: with one A panel load and 4 broadcasts per 4 panel multiply-adds, the FMA units stay busy.
    // Inlined into the passes, which call it for every adapter's tile.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Tile<TPanel>(int adapter, int row, int column, float* tile) where TPanel : struct, IFloatPanel<TPanel>
    {
        int r = ranks[adapter];
        nint stride = PaddedColumns;
        float* pa = (float*)aAt[adapter] + column;
        float* pb0 = (float*)bAt[adapter] + (long)row * r, pb1 = pb0 + r, pb2 = pb1 + r, pb3 = pb2 + r;
        TPanel c0 = default, c1 = default, c2 = default, c3 = default;
        for (nint k = 0; k < r; k++, pa += stride)
        {
            var ak = TPanel.Load(pa);
            c0 = ak.MultiplyAdd(pb0 + k, c0);
            c1 = ak.MultiplyAdd(pb1 + k, c1);
            c2 = ak.MultiplyAdd(pb2 + k, c2);
            c3 = ak.MultiplyAdd(pb3 + k, c3);
        }
        float s = scalings[adapter];
        c0.Times(s).Store(tile);
        c1.Times(s).Store(tile + TileColumns);
        c2.Times(s).Store(tile + 2 * TileColumns);
        c3.Times(s).Store(tile + 3 * TileColumns);
    }

    /// <summary>
    /// Adapter <paramref name="adapter"/>'s entries at 8 scattered places (lane by lane: <paramref name="rows"/>,
    /// <paramref name="columns"/>, 8 each), with the bits <see cref="Tile"/> gives them: the same multiply-adds in the
    /// same order.
    /// </summary>
    public Vector256<float> Entries(int adapter, int* rows, int* columns)
    {
        int r = ranks[adapter];
        var sum = Vector256<float>.Zero;
        float* b = (float*)bAt[adapter];
        if (r % Lanes == 0)
        {
            // Each entry's B row and Aᵀ row are contiguous: 8 of each loaded and transposed give, vector by vector, the
            // k-th factors of the 8 entries, for the price of about a third of two gathers per k.
            float* aT = (float*)aTAt[adapter];
            for (int k = 0; k < r; k += Lanes)
            {
                var (b0, b1, b2, b3, b4, b5, b6, b7) = Transposed(b + k, rows, r);
                var (a0, a1, a2, a3, a4, a5, a6, a7) = Transposed(aT + k, columns, r);
                sum = MultiplyAdd(b0, a0, sum);
                sum = MultiplyAdd(b1, a1, sum);
                sum = MultiplyAdd(b2, a2, sum);
                sum = MultiplyAdd(b3, a3, sum);
                sum = MultiplyAdd(b4, a4, sum);
                sum = MultiplyAdd(b5, a5, sum);
                sum = MultiplyAdd(b6, a6, sum);
                sum = MultiplyAdd(b7, a7, sum);
            }
        }
        else
        {
            var rowStarts = Vector256.Load(rows) * r;
            var at = Vector256.Load(columns);
            var stride = Vector256.Create(PaddedColumns);
            float* a = (float*)aAt[adapter];
            for (int k = 0; k < r; k++, at += stride)
                sum = MultiplyAdd(Avx2.GatherVector256(b + k, rowStarts, sizeof(float)), Avx2.GatherVector256(a, at, sizeof(float)), sum);
        }
        return sum * Vector256.Create(scalings[adapter]);
    }

    // The 8 x 8 block whose row i is (first + rows[i] * stride)[0..8), transposed: vector j holds the rows' j-th values.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>,
        Vector256<float>) Transposed(float* first, int* rows, int stride) =>
        FloatTranspose.Transposed(Vector256.Load(first + (long)rows[0] * stride), Vector256.Load(first + (long)rows[1] * stride),
            Vector256.Load(first + (long)rows[2] * stride), Vector256.Load(first + (long)rows[3] * stride), Vector256.Load(first + (long)rows[4] * stride),
            Vector256.Load(first + (long)rows[5] * stride), Vector256.Load(first + (long)rows[6] * stride), Vector256.Load(first + (long)rows[7] * stride));

    /// <summary>
    /// The magnitude of one entry (flat row-major <paramref name="index"/>), for samples: the same product, summed in
    /// another order, so it can differ from the tile's entry in the last bit.
    /// </summary>
    public float Magnitude(int adapter, long index)
    {
        int r = ranks[adapter];
        long row = index / Columns, column = index % Columns;
        float* pa = (float*)aTAt[adapter] + column * r, pb = (float*)bAt[adapter] + row * r;
        var sum = Vector256<float>.Zero;
        int k = 0;
        for (; k + Lanes <= r; k += Lanes)
            sum = MultiplyAdd(Vector256.Load(pb + k), Vector256.Load(pa + k), sum);
        float total = Vector256.Sum(sum);
        for (; k < r; k++)
            total = MathF.FusedMultiplyAdd(pb[k], pa[k], total);
        return MathF.Abs(total * scalings[adapter]);
    }

    private static Vector256<float> MultiplyAdd(Vector256<float> x, Vector256<float> y, Vector256<float> addend) =>
        Fma.MultiplyAdd(x, y, addend);
}
