using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
    public const int Width = 32;

    private const int Lanes = 8;

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

    // y[r] = A[r] x for rows [first, end), 4 rows and one 32-column panel at a time: 16 accumulators, 4 x loads and 4
    // broadcasts per 16 multiply-adds. A short last group reads its last row again and stores only its own rows.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowsTimes(float* a, int rows, int cols, int first, int end, float* x, int width, float* y)
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
                Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default,
                    c10 = default, c11 = default, c12 = default, c13 = default,
                    c20 = default, c21 = default, c22 = default, c23 = default,
                    c30 = default, c31 = default, c32 = default, c33 = default;
                float* px = x + panel;
                for (int c = 0; c < cols; c++, px += width)
                {
                    var x0 = Vector256.Load(px);
                    var x1 = Vector256.Load(px + Lanes);
                    var x2 = Vector256.Load(px + 2 * Lanes);
                    var x3 = Vector256.Load(px + 3 * Lanes);
                    var b = Vector256.Create(a0[c]);
                    c00 = Fma.MultiplyAdd(b, x0, c00);
                    c01 = Fma.MultiplyAdd(b, x1, c01);
                    c02 = Fma.MultiplyAdd(b, x2, c02);
                    c03 = Fma.MultiplyAdd(b, x3, c03);
                    b = Vector256.Create(a1[c]);
                    c10 = Fma.MultiplyAdd(b, x0, c10);
                    c11 = Fma.MultiplyAdd(b, x1, c11);
                    c12 = Fma.MultiplyAdd(b, x2, c12);
                    c13 = Fma.MultiplyAdd(b, x3, c13);
                    b = Vector256.Create(a2[c]);
                    c20 = Fma.MultiplyAdd(b, x0, c20);
                    c21 = Fma.MultiplyAdd(b, x1, c21);
                    c22 = Fma.MultiplyAdd(b, x2, c22);
                    c23 = Fma.MultiplyAdd(b, x3, c23);
                    b = Vector256.Create(a3[c]);
                    c30 = Fma.MultiplyAdd(b, x0, c30);
                    c31 = Fma.MultiplyAdd(b, x1, c31);
                    c32 = Fma.MultiplyAdd(b, x2, c32);
                    c33 = Fma.MultiplyAdd(b, x3, c33);
                }
                float* py = y + (long)row * width + panel;
                Store(py, c00, c01, c02, c03);
                if (valid > 1)
                    Store(py + width, c10, c11, c12, c13);
                if (valid > 2)
                    Store(py + 2 * width, c20, c21, c22, c23);
                if (valid > 3)
                    Store(py + 3 * width, c30, c31, c32, c33);
            }
        }
    }

    // zᵀ[j, c] += sum over the block's rows r of y[r, j] A[r, c]: A's rows are contiguous along c, so 32 columns of zᵀ
    // by 4 of its rows accumulate in 16 registers over the block's rows (4 A loads and 4 broadcasts per 16 multiply-adds).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddTransposedTimes(float* a, int blockRows, int cols, float* y, int width, float* zTransposed)
    {
        int wholeColumns = cols / Width * Width;
        for (int column = 0; column < wholeColumns; column += Width)
            for (int j = 0; j < width; j += 4)
            {
                float* z0 = zTransposed + (long)j * cols + column, z1 = z0 + cols, z2 = z1 + cols, z3 = z2 + cols;
                Vector256<float> c00 = Vector256.Load(z0), c01 = Vector256.Load(z0 + Lanes), c02 = Vector256.Load(z0 + 2 * Lanes), c03 = Vector256.Load(z0 + 3 * Lanes),
                    c10 = Vector256.Load(z1), c11 = Vector256.Load(z1 + Lanes), c12 = Vector256.Load(z1 + 2 * Lanes), c13 = Vector256.Load(z1 + 3 * Lanes),
                    c20 = Vector256.Load(z2), c21 = Vector256.Load(z2 + Lanes), c22 = Vector256.Load(z2 + 2 * Lanes), c23 = Vector256.Load(z2 + 3 * Lanes),
                    c30 = Vector256.Load(z3), c31 = Vector256.Load(z3 + Lanes), c32 = Vector256.Load(z3 + 2 * Lanes), c33 = Vector256.Load(z3 + 3 * Lanes);
                float* pa = a + column;
                float* py = y + j;
                for (int r = 0; r < blockRows; r++, pa += cols, py += width)
                {
                    var a0 = Vector256.Load(pa);
                    var a1 = Vector256.Load(pa + Lanes);
                    var a2 = Vector256.Load(pa + 2 * Lanes);
                    var a3 = Vector256.Load(pa + 3 * Lanes);
                    var b = Vector256.Create(py[0]);
                    c00 = Fma.MultiplyAdd(b, a0, c00);
                    c01 = Fma.MultiplyAdd(b, a1, c01);
                    c02 = Fma.MultiplyAdd(b, a2, c02);
                    c03 = Fma.MultiplyAdd(b, a3, c03);
                    b = Vector256.Create(py[1]);
                    c10 = Fma.MultiplyAdd(b, a0, c10);
                    c11 = Fma.MultiplyAdd(b, a1, c11);
                    c12 = Fma.MultiplyAdd(b, a2, c12);
                    c13 = Fma.MultiplyAdd(b, a3, c13);
                    b = Vector256.Create(py[2]);
                    c20 = Fma.MultiplyAdd(b, a0, c20);
                    c21 = Fma.MultiplyAdd(b, a1, c21);
                    c22 = Fma.MultiplyAdd(b, a2, c22);
                    c23 = Fma.MultiplyAdd(b, a3, c23);
                    b = Vector256.Create(py[3]);
                    c30 = Fma.MultiplyAdd(b, a0, c30);
                    c31 = Fma.MultiplyAdd(b, a1, c31);
                    c32 = Fma.MultiplyAdd(b, a2, c32);
                    c33 = Fma.MultiplyAdd(b, a3, c33);
                }
                Store(z0, c00, c01, c02, c03);
                Store(z1, c10, c11, c12, c13);
                Store(z2, c20, c21, c22, c23);
                Store(z3, c30, c31, c32, c33);
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

    private static void Store(float* target, Vector256<float> v0, Vector256<float> v1, Vector256<float> v2, Vector256<float> v3)
    {
        v0.Store(target);
        v1.Store(target + Lanes);
        v2.Store(target + 2 * Lanes);
        v3.Store(target + 3 * Lanes);
    }
}
