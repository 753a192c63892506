using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LoraLego.Core.Compute;

namespace LoraLego.Core.Surgery;

/// <summary>
/// The products a range finder needs from a large float32 matrix A (rows x cols, row-major), each in one pass over A:
/// A X, and AᵀA X as Aᵀ(A_b X) summed over row blocks A_b small enough to stay in L2 while both products read them, so
/// A comes from memory once where the two separate products (libtorch's GEMMs) read it twice. X and the results have
/// <see cref="Width"/>-column panels (zero columns where the caller needs fewer). The rows are split into
/// <see cref="Chunks"/> fixed ranges whatever the thread count; each chunk's partial AᵀA X is summed into the result in
/// chunk order, so the bytes do not depend on how many threads run.
/// </summary>
internal static unsafe class RowBlockProducts
{
    /// <summary>Columns of a panel: 4 vectors of 8.</summary>
    public const int Width = FloatPanel.Floats;

    private const int Chunks = 8;

    // Bytes of a row block both products read while it stays in a core's L2 (1 MiB on dev), with room for X and y.
    private const int BlockBytes = 512 * 1024;

    /// <summary>Whether the passes run at full speed: 256-bit vectors with fused multiply-adds.</summary>
    public static bool IsAccelerated => Vector256.IsHardwareAccelerated && Fma.IsSupported;

    /// <summary>
    /// y = A x: <paramref name="x"/> is cols x width, <paramref name="y"/> rows x width (row-major, width a multiple of
    /// <see cref="Width"/>).
    /// </summary>
    public static void Times(float* a, int rows, int cols, float* x, int width, float* y, ParallelOptions parallel)
    {
        var (pa, px, py) = ((nint)a, (nint)x, (nint)y);
        Parallel.For(0, Chunks, parallel, chunk =>
        {
            var (first, end) = ChunkRows(rows, chunk);
            RowsTimes((float*)pa, rows, cols, first, end, (float*)px, width, (float*)py);
        });
    }

    private static void RowsTimes(float* a, int rows, int cols, int first, int end, float* x, int width, float* y)
    {
        if (FloatPanel.Wide)
            RowsTimes<Panel512>(a, rows, cols, first, end, x, width, y);
        else
            RowsTimes<Panel256>(a, rows, cols, first, end, x, width, y);
    }

    private static void AddTransposedTimes(float* a, int blockRows, int cols, float* y, int width, float* zTransposed)
    {
        if (FloatPanel.Wide)
            AddTransposedTimes<Panel512>(a, blockRows, cols, y, width, zTransposed);
        else
            AddTransposedTimes<Panel256>(a, blockRows, cols, y, width, zTransposed);
    }

    /// <summary>
    /// zᵀ = (AᵀA x)ᵀ: <paramref name="x"/> is cols x width, <paramref name="zTransposed"/> width x cols (row-major).
    /// </summary>
    public static void Gram(float* a, int rows, int cols, float* x, int width, float* zTransposed, ParallelOptions parallel)
    {
        long size = (long)width * cols;
        var partials = ArrayPool<float>.Shared.Rent(checked((int)(Chunks * size)));
        try
        {
            fixed (float* p = partials)
            {
                var (pa, px, pp) = ((nint)a, (nint)x, (nint)p);
                int blockRows = Math.Clamp(BlockBytes / (cols * sizeof(float)) / 4 * 4, 4, 64);
                Parallel.For(0, Chunks, parallel, chunk =>
                {
                    float* partial = (float*)pp + chunk * size;
                    new Span<float>(partial, (int)size).Clear();
                    var y = new float[blockRows * width];
                    fixed (float* py = y)
                    {
                        var (first, end) = ChunkRows(rows, chunk);
                        for (int row = first; row < end; row += blockRows)
                        {
                            int blockEnd = Math.Min(end, row + blockRows);
                            RowsTimes((float*)pa, rows, cols, row, blockEnd, (float*)px, width, py - (long)row * width);
                            AddTransposedTimes((float*)pa + (long)row * cols, blockEnd - row, cols, py, width, partial);
                        }
                    }
                });
                // Chunk by chunk in order, so the sum's rounding is the same at every thread count.
                new Span<float>(p, (int)size).CopyTo(new Span<float>(zTransposed, (int)size));
                for (int chunk = 1; chunk < Chunks; chunk++)
                {
                    float* partial = p + chunk * size;
                    for (long i = 0; i < size; i++)
                        zTransposed[i] += partial[i];
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(partials);
        }
    }

    // Rows [first, end) of a chunk: near-equal ranges, multiples of 4 rows apart.
    private static (int First, int End) ChunkRows(int rows, int chunk)
    {
        int step = (rows / Chunks + 3) / 4 * 4;
        return (Math.Min(rows, chunk * step), chunk == Chunks - 1 ? rows : Math.Min(rows, (chunk + 1) * step));
    }

    // y[r] = A[r] x for rows [first, end), 4 rows and one 32-column panel at a time: 4 panel accumulators, one x panel load and 4
    // broadcasts per 4 panel multiply-adds. A short last group reads its last row again and stores only its own rows.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void RowsTimes<TPanel>(float* a, int rows, int cols, int first, int end, float* x, int width, float* y)
        where TPanel : struct, IFloatPanel<TPanel>
    {
        for (int row = first; row < end; row += 4)
        {
            int valid = Math.Min(4, end - row);
            float* a0 = a + (long)row * cols;
            float* a1 = a + (long)(row + Math.Min(1, valid - 1)) * cols;
            float* a2 = a + (long)(row + Math.Min(2, valid - 1)) * cols;
            float* a3 = a + (long)(row + Math.Min(3, valid - 1)) * cols;
            for (int panel = 0; panel < width; panel += Width)
            {
                TPanel y0 = default, y1 = default, y2 = default, y3 = default;
                float* px = x + panel;
                for (int c = 0; c < cols; c++, px += width)
                {
                    var xc = TPanel.Load(px);
                    y0 = xc.MultiplyAdd(a0 + c, y0);
                    y1 = xc.MultiplyAdd(a1 + c, y1);
                    y2 = xc.MultiplyAdd(a2 + c, y2);
                    y3 = xc.MultiplyAdd(a3 + c, y3);
                }
                float* py = y + (long)row * width + panel;
                y0.Store(py);
                if (valid > 1)
                    y1.Store(py + width);
                if (valid > 2)
                    y2.Store(py + 2 * width);
                if (valid > 3)
                    y3.Store(py + 3 * width);
            }
        }
    }

    // zᵀ[j, c] += sum over the block's rows r of y[r, j] A[r, c]: A's rows are contiguous along c, so 32 columns of zᵀ
    // by 4 of its rows accumulate in 4 panels over the block's rows (one A panel load and 4 broadcasts per 4 panel multiply-adds).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void AddTransposedTimes<TPanel>(float* a, int blockRows, int cols, float* y, int width, float* zTransposed)
        where TPanel : struct, IFloatPanel<TPanel>
    {
        int wholeColumns = cols / Width * Width;
        for (int column = 0; column < wholeColumns; column += Width)
            for (int j = 0; j < width; j += 4)
            {
                float* z0 = zTransposed + (long)j * cols + column, z1 = z0 + cols, z2 = z1 + cols, z3 = z2 + cols;
                TPanel s0 = TPanel.Load(z0), s1 = TPanel.Load(z1), s2 = TPanel.Load(z2), s3 = TPanel.Load(z3);
                float* pa = a + column;
                float* py = y + j;
                for (int r = 0; r < blockRows; r++, pa += cols, py += width)
                {
                    var ar = TPanel.Load(pa);
                    s0 = ar.MultiplyAdd(py + 0, s0);
                    s1 = ar.MultiplyAdd(py + 1, s1);
                    s2 = ar.MultiplyAdd(py + 2, s2);
                    s3 = ar.MultiplyAdd(py + 3, s3);
                }
                s0.Store(z0);
                s1.Store(z1);
                s2.Store(z2);
                s3.Store(z3);
            }
        for (int j = 0; j < width; j++)
            for (int column = wholeColumns; column < cols; column++)
            {
                float sum = zTransposed[(long)j * cols + column];
                for (int r = 0; r < blockRows; r++)
                    sum = MathF.FusedMultiplyAdd(y[(long)r * width + j], a[(long)r * cols + column], sum);
                zTransposed[(long)j * cols + column] = sum;
            }
    }
}
