using System.Runtime.InteropServices;
using LoraLego.Core.Compute;
using LoraLego.Core.Merging;
using static TorchSharp.torch;

namespace LoraLego.Core.Surgery;

/// <summary>
/// The leading singular triplets of a dense matrix by a randomized range finder (Halko, Martinsson and Tropp 2011,
/// algorithms 4.4 and 5.1): a Gaussian sketch, a few power iterations with re-orthonormalisation, then the SVD of
/// the small projected matrix. Built from matmul and QR because TorchSharp 0.107 has no svd_lowrank. Cost
/// O(out * in * (k + oversampling) * (2 q + 2)) against O(out * in * min(out, in)) for the dense SVD.
/// </summary>
public static class RandomizedSvd
{
    /// <summary>
    /// The first <paramref name="rank"/> + <paramref name="oversampling"/> singular triplets of <paramref name="matrix"/>
    /// (float32 or float64), float64, in the caller's dispose scope; the dense SVD where the sketch would not be smaller.
    /// <paramref name="start"/>, where given, replaces the sketch's first columns (cols x count, column-major): directions
    /// the caller knows to lie near the leading ones, which then need fewer power iterations.
    /// </summary>
    public static SingularFactors Of(Tensor matrix, int rank, int oversampling, int powerIterations, Generator? generator,
        (double[] Basis, int Count)? start = null)
    {
        long rows = matrix.shape[0], cols = matrix.shape[1];
        long sketch = Math.Min(rank + oversampling, Math.Min(rows, cols));
        if (2 * sketch >= Math.Min(rows, cols))
            return Dense(matrix);
        var omega = Started(Sketch(matrix, cols, sketch, generator), start);
        var q = Orthonormal(matrix.matmul(omega));
        for (int i = 0; i < powerIterations; i++)
        {
            // Re-orthonormalising after each product keeps the small singular values from drowning in rounding error.
            var z = Orthonormal(matrix.t().matmul(q));
            q = Orthonormal(matrix.matmul(z));
        }
        var projected = q.t().matmul(matrix).to(ScalarType.Float64);
        var (u, s, vh) = linalg.svd(projected, fullMatrices: false);
        return new SingularFactors(q.to(ScalarType.Float64).matmul(u), s, vh);
    }

    /// <summary>
    /// The same triplets of a contiguous float32 CPU <paramref name="matrix"/> by subspace iteration on AᵀA: each
    /// application Aᵀ(A X) is one pass over A's row blocks (<see cref="RowBlockProducts"/>), orthonormalised between
    /// applications, and the last basis X gives A ≈ (A X) Xᵀ, whose SVD is that of the small A X. Powers of AᵀA square
    /// the spectrum, which in float32 loses only directions below about 3e-4 of the largest singular value (the square
    /// root of the rounding), far under the 26 or so leading ones a rank cut keeps unless they are negligible anyway.
    /// <paramref name="powerIterations"/> applications after the first (which plays the sketch's product): the
    /// basis then carries the spectrum to the power 2 (q + 1), against 2 q + 1 for <see cref="Of"/>, in q + 2 passes
    /// over A instead of 2 q + 2. The sketch has whole <see cref="RowBlockProducts.Width"/>-column panels (the passes
    /// compute them anyway), so at least <paramref name="oversampling"/> columns beyond the rank. The small dense
    /// decompositions (the basis's QR, and the SVD of A X as its QR then the SVD of R) are this module's float64 ones
    /// on one thread rather than libtorch's, whose LAPACK rounds differently at different thread counts, so the bytes
    /// do not depend on <paramref name="threads"/> or on libtorch's thread count. Singular vectors have the signs of
    /// <see cref="JacobiSvd"/>; a left one whose value is 0 is 0.
    /// </summary>
    /// <remarks><paramref name="start"/> as for <see cref="Of"/>, which also takes the matrices this route does not.</remarks>
    public static SingularFactors OfRowBlocks(Tensor matrix, int rank, int oversampling, int powerIterations, Generator? generator, int threads,
        (double[] Basis, int Count)? start = null) =>
        OfRowBlocks(matrix, rank, oversampling, powerIterations, generator, threads, start, kept: null);

    /// <summary>
    /// <see cref="OfRowBlocks(Tensor, int, int, int, Generator?, int, ValueTuple{double[], int}?)"/> with its scratch
    /// arrays in <paramref name="kept"/> where given (a worker merging module after module).
    /// </summary>
    internal static unsafe SingularFactors OfRowBlocks(Tensor matrix, int rank, int oversampling, int powerIterations, Generator? generator, int threads,
        (double[] Basis, int Count)? start, KeptArrays? kept)
    {
        if (!TakesRowBlocks(matrix, rank, oversampling))
            return Of(matrix, rank, oversampling, powerIterations, generator, start);
        int rows = checked((int)matrix.shape[0]), cols = checked((int)matrix.shape[1]);
        int width = RowBlockWidth(rank, oversampling);
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads) };
        var contiguous = matrix.contiguous();
        var x = Started(Sketch(contiguous, cols, width, generator), start).contiguous();
        var zTransposed = empty(width, cols, ScalarType.Float32);
        // Reused by every pass: a few MB each, which as fresh large-object arrays per pass would pile up between
        // collections.
        double[] columns = kept.GetOrNew<double>("svd.columns", cols * width), basis = kept.GetOrNew<double>("svd.basis", cols * width);
        fixed (byte* a = contiguous.bytes)
        {
            for (int i = 0; i <= powerIterations; i++)
            {
                fixed (byte* px = x.bytes, pz = zTransposed.bytes)
                    RowBlockProducts.Gram((float*)a, rows, cols, (float*)px, width, (float*)pz, parallel);
                Orthonormalise(zTransposed, x, columns, basis, cols, width);
            }
            var y = empty(rows, width, ScalarType.Float32);
            fixed (byte* px = x.bytes, py = y.bytes)
                RowBlockProducts.Times((float*)a, rows, cols, (float*)px, width, (float*)py, parallel);
            return FactorsOf(y, basis, rows, cols, width, kept);
        }
    }

    /// <summary>
    /// The columns of the sketch <see cref="OfRowBlocks(Tensor, int, int, int, Generator?, int, ValueTuple{double[], int}?)"/> draws for <paramref name="matrix"/> (on either of its routes),
    /// 0 where it takes the dense SVD instead.
    /// </summary>
    internal static int SketchColumns(Tensor matrix, int rank, int oversampling)
    {
        if (TakesRowBlocks(matrix, rank, oversampling))
            return RowBlockWidth(rank, oversampling);
        long smaller = Math.Min(matrix.shape[0], matrix.shape[1]), sketch = Math.Min(rank + oversampling, smaller);
        return 2 * sketch >= smaller ? 0 : (int)sketch;
    }

    // Columns of the row-block route's sketch: rank + oversampling in whole panels.
    private static int RowBlockWidth(int rank, int oversampling) =>
        (rank + oversampling + RowBlockProducts.Width - 1) / RowBlockProducts.Width * RowBlockProducts.Width;

    private static bool TakesRowBlocks(Tensor matrix, int rank, int oversampling) =>
        TakesRowBlocks(matrix.shape[0], matrix.shape[1], rank, oversampling) && matrix.dtype == ScalarType.Float32
        && matrix.device_type == TorchSharp.DeviceType.CPU;

    /// <summary>
    /// Whether a float32 CPU matrix of this shape is cut by <see cref="OfRowBlocks(Tensor, int, int, int, Generator?, int, ValueTuple{double[], int}?)"/>'s own passes (whose bytes do not
    /// depend on the thread count) rather than by libtorch's products (small matrices, and cores without AVX2).
    /// </summary>
    internal static bool TakesRowBlocks(long rows, long cols, int rank, int oversampling) =>
        2 * RowBlockWidth(rank, oversampling) < Math.Min(rows, cols) && RowBlockProducts.IsAccelerated;

    // The sketch with its first columns replaced by the start's (rounded to the sketch's dtype, on its device).
    private static Tensor Started(Tensor sketch, (double[] Basis, int Count)? start)
    {
        if (start is not var (given, count))
            return sketch;
        long cols = sketch.shape[0];
        int columns = (int)Math.Min(count, sketch.shape[1]);
        using var directions = empty(columns, cols, ScalarType.Float64);
        given.AsSpan(0, checked((int)(columns * cols))).CopyTo(MemoryMarshal.Cast<byte, double>(directions.bytes));
        sketch.narrow(1, 0, columns).copy_(directions.t());
        return sketch;
    }

    // Z's QR basis (Z the columns of zTransposed's rows), rounded to float32 into x (cols x width, row-major) for the
    // next pass and into basis (column-major float64); columns is the factorisation's scratch.
    private static void Orthonormalise(Tensor zTransposed, Tensor x, double[] columns, double[] basis, int cols, int width)
    {
        var z = MemoryMarshal.Cast<byte, float>(zTransposed.bytes);
        for (int i = 0; i < z.Length; i++)
            columns[i] = z[i];
        new HouseholderQr(columns, cols, width).Basis(basis);
        var rowMajor = MemoryMarshal.Cast<byte, float>(x.bytes);
        for (int j = 0; j < width; j++)
            for (int i = 0; i < cols; i++)
            {
                float entry = (float)basis[j * cols + i];
                rowMajor[i * width + j] = entry;
                basis[j * cols + i] = entry;
            }
    }

    // A ≈ y Xᵀ with y = A X = Q R and R = U S Vᵀ: A ≈ (Q U) S (X V)ᵀ, the factors written straight into their tensors.
    private static SingularFactors FactorsOf(Tensor y, double[] basis, int rows, int cols, int width, KeptArrays? kept)
    {
        var products = MemoryMarshal.Cast<byte, float>(y.bytes);
        var columns = kept.GetOrNew<double>("svd.y", rows * width);
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < width; j++)
                columns[j * rows + i] = products[i * width + j];
        var qr = new HouseholderQr(columns, rows, width);
        var small = new JacobiSvd(qr.R(), width);
        var leftColumns = qr.Times(small.U, width, kept.GetOrNew<double>("svd.left", rows * width));
        var left = empty(rows, width, ScalarType.Float64);
        var leftRows = MemoryMarshal.Cast<byte, double>(left.bytes);
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < width; j++)
                leftRows[i * width + j] = leftColumns[j * rows + i];
        var right = zeros(width, cols, ScalarType.Float64);
        var rightRows = MemoryMarshal.Cast<byte, double>(right.bytes);
        for (int r = 0; r < width; r++)
            for (int j = 0; j < width; j++)
                OrderedDoubles.AddScaled(small.V[r * width + j], basis.AsSpan(j * cols, cols), rightRows.Slice(r * cols, cols));
        return new SingularFactors(left, tensor(small.Values), right);
    }

    // TorchSharp's generators are CPU generators: the sketch is drawn there and moved, which also gives a seed the same
    // sketch on every device.
    private static Tensor Sketch(Tensor matrix, long cols, long columns, Generator? generator) => generator is null
        ? randn([cols, columns], dtype: matrix.dtype, device: matrix.device)
        : randn([cols, columns], dtype: matrix.dtype, device: CPU, generator: generator).to(matrix.device);

    /// <summary>The full thin SVD, float64.</summary>
    public static SingularFactors Dense(Tensor matrix)
    {
        var (u, s, vh) = linalg.svd(matrix.to(ScalarType.Float64), fullMatrices: false);
        return new SingularFactors(u, s, vh);
    }

    private static Tensor Orthonormal(Tensor columns) => linalg.qr(columns).Q;
}
