using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LoraLego.Core.Clustering;

/// <summary>
/// X X^T of float64 or float32 rows on the CPU, computing each entry once (the matrix is symmetric,
/// so half of a general matmul's work) in a fixed order of additions, so the result is the same
/// whatever the thread count.
/// </summary>
/// <remarks>
/// Rows go in blocks of four: a block pair accumulates its 16 dot products in SIMD registers over
/// a slice of columns small enough to stay in the core's cache, then adds them to the float64
/// result; the pairs are shared among the threads, each pair done whole by one thread. Float64
/// rows are summed in float64 throughout, as the general matmul's were. Float32 rows are summed in
/// float32 within a slice (a lane adds 32 products; products of F16 or BF16 values are exact in
/// float32) and the slices' sums in float64: twice the multiply-adds per instruction of float64,
/// for rows whose Gram matrix only decides k-means' assignments (<see cref="RankClusterer"/>).
/// </remarks>
internal static unsafe class SymmetricGram
{
    private const int Block = 4;

    // Columns per slice: 128 rows of 256 doubles are 256 KiB, which stays in a core's L2 cache.
    private const int SliceColumns = 256;

    /// <summary>The Gram matrix of columns [<paramref name="first"/>, first + <paramref name="count"/>) of the n rows (row stride <paramref name="stride"/>), n x n row-major.</summary>
    public static double[] Of(ReadOnlySpan<double> rows, int n, int stride, int first, int count, int threads) =>
        Of<double>(rows, n, stride, first, count, threads);

    /// <summary>As the float64 overload, of float32 rows, each slice summed in float32.</summary>
    public static double[] Of(ReadOnlySpan<float> rows, int n, int stride, int first, int count, int threads) =>
        Of<float>(rows, n, stride, first, count, threads);

    private static double[] Of<T>(ReadOnlySpan<T> rows, int n, int stride, int first, int count, int threads)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var gram = new double[n * n];
        int blocks = (n + Block - 1) / Block;
        var pairs = new List<(int, int)>(blocks * (blocks + 1) / 2);
        for (int bi = 0; bi < blocks; bi++)
            for (int bj = bi; bj < blocks; bj++)
                pairs.Add((bi, bj));
        int workers = Math.Clamp(threads, 1, pairs.Count);
        fixed (T* data = rows)
        {
            T* origin = data + first;
            if (workers == 1)
                Accumulate(origin, n, stride, count, pairs, 0, 1, gram);
            else
            {
                // A lambda cannot capture a pointer; the address travels as an integer.
                nint at = (nint)origin;
                Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers },
                    w => Accumulate((T*)at, n, stride, count, pairs, w, workers, gram));
            }
        }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++)
                gram[i * n + j] = gram[j * n + i];
        return gram;
    }

    // The pairs worker, worker + workers, ... of the list, slice by slice.
    private static void Accumulate<T>(T* origin, int n, int stride, int count, List<(int, int)> pairs, int worker, int workers, double[] gram)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<double> sums = stackalloc double[Block * Block];
        for (int start = 0; start < count; start += SliceColumns)
        {
            int length = Math.Min(SliceColumns, count - start);
            for (int p = worker; p < pairs.Count; p += workers)
            {
                var (bi, bj) = pairs[p];
                Dots(origin + start, n, stride, length, bi * Block, bj * Block, sums);
                for (int r = 0; r < Block && bi * Block + r < n; r++)
                    for (int c = 0; c < Block && bj * Block + c < n; c++)
                        if (bj * Block + c >= bi * Block + r)
                            gram[(bi * Block + r) * n + bj * Block + c] += sums[r * Block + c];
            }
        }
    }

    // The 16 dot products of rows i0..i0+3 with rows j0..j0+3 over `length` columns, a vector's lanes at a time, each
    // lane's sum then added in float64; rows past the last are read as the last row (their products are not kept).
    private static void Dots<T>(T* slice, int n, int stride, int length, int i0, int j0, Span<double> sums)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T* x0 = slice + (long)Math.Min(i0, n - 1) * stride, x1 = slice + (long)Math.Min(i0 + 1, n - 1) * stride;
        T* x2 = slice + (long)Math.Min(i0 + 2, n - 1) * stride, x3 = slice + (long)Math.Min(i0 + 3, n - 1) * stride;
        T* y0 = slice + (long)Math.Min(j0, n - 1) * stride, y1 = slice + (long)Math.Min(j0 + 1, n - 1) * stride;
        T* y2 = slice + (long)Math.Min(j0 + 2, n - 1) * stride, y3 = slice + (long)Math.Min(j0 + 3, n - 1) * stride;
        Vector256<T> s00 = default, s01 = default, s02 = default, s03 = default;
        Vector256<T> s10 = default, s11 = default, s12 = default, s13 = default;
        Vector256<T> s20 = default, s21 = default, s22 = default, s23 = default;
        Vector256<T> s30 = default, s31 = default, s32 = default, s33 = default;
        int c = 0, lanes = Vector256<T>.Count;
        for (; c + lanes <= length; c += lanes)
        {
            var a0 = Vector256.Load(x0 + c);
            var a1 = Vector256.Load(x1 + c);
            var a2 = Vector256.Load(x2 + c);
            var a3 = Vector256.Load(x3 + c);
            var b0 = Vector256.Load(y0 + c);
            var b1 = Vector256.Load(y1 + c);
            var b2 = Vector256.Load(y2 + c);
            var b3 = Vector256.Load(y3 + c);
            s00 = SimdFma.MultiplyAdd(a0, b0, s00); s01 = SimdFma.MultiplyAdd(a0, b1, s01); s02 = SimdFma.MultiplyAdd(a0, b2, s02); s03 = SimdFma.MultiplyAdd(a0, b3, s03);
            s10 = SimdFma.MultiplyAdd(a1, b0, s10); s11 = SimdFma.MultiplyAdd(a1, b1, s11); s12 = SimdFma.MultiplyAdd(a1, b2, s12); s13 = SimdFma.MultiplyAdd(a1, b3, s13);
            s20 = SimdFma.MultiplyAdd(a2, b0, s20); s21 = SimdFma.MultiplyAdd(a2, b1, s21); s22 = SimdFma.MultiplyAdd(a2, b2, s22); s23 = SimdFma.MultiplyAdd(a2, b3, s23);
            s30 = SimdFma.MultiplyAdd(a3, b0, s30); s31 = SimdFma.MultiplyAdd(a3, b1, s31); s32 = SimdFma.MultiplyAdd(a3, b2, s32); s33 = SimdFma.MultiplyAdd(a3, b3, s33);
        }
        sums[0] = Sum(s00); sums[1] = Sum(s01); sums[2] = Sum(s02); sums[3] = Sum(s03);
        sums[4] = Sum(s10); sums[5] = Sum(s11); sums[6] = Sum(s12); sums[7] = Sum(s13);
        sums[8] = Sum(s20); sums[9] = Sum(s21); sums[10] = Sum(s22); sums[11] = Sum(s23);
        sums[12] = Sum(s30); sums[13] = Sum(s31); sums[14] = Sum(s32); sums[15] = Sum(s33);
        if (c == length)
            return;
        T** xs = stackalloc T*[] { x0, x1, x2, x3 };
        T** ys = stackalloc T*[] { y0, y1, y2, y3 };
        for (; c < length; c++)
            for (int r = 0; r < Block; r++)
                for (int k = 0; k < Block; k++)
                    sums[r * Block + k] = Math.FusedMultiplyAdd(double.CreateTruncating(xs[r][c]), double.CreateTruncating(ys[k][c]), sums[r * Block + k]);
    }

    // The lanes' sum in float64 (float32 lanes widened first).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double Sum<T>(Vector256<T> lanes) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(double))
            return Vector256.Sum(lanes.AsDouble());
        var (low, high) = Vector256.Widen(lanes.AsSingle());
        return Vector256.Sum(low + high);
    }
}
