using LoraLego.Core.Surgery;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Surgery;

/// <summary>
/// The range finder's own float64 decompositions against their defining identities and libtorch's (LAPACK's) results:
/// QR = A with QᵀQ = I and R upper triangular with a non-negative diagonal; U diag(s) Vᵀ = M with orthonormal U and V.
/// </summary>
public class SmallDecompositionTests
{
    private static Tensor ColumnMajor(double[] data, int rows, int cols) => tensor(data, [cols, rows]).t();

    private static double[] Gaussian(int count, ulong seed) =>
        randn([count], ScalarType.Float64, generator: new Generator(seed)).data<double>().ToArray();

    [Theory]
    [InlineData(515, 32)]
    [InlineData(33, 32)]
    [InlineData(1000, 7)]
    public void Householder_qr_reproduces_the_matrix_with_orthonormal_q_and_canonical_r(int rows, int width)
    {
        using var scope = NewDisposeScope();
        var data = Gaussian(rows * width, 11);
        var matrix = ColumnMajor(data, rows, width);
        var qr = new HouseholderQr((double[])data.Clone(), rows, width);
        var q = ColumnMajor(qr.Basis(new double[rows * width]), rows, width);
        var r = tensor(qr.R(), [width, width]);
        Assert.True(q.matmul(r).allclose(matrix, rtol: 0, atol: 1e-13), "QR = A");
        Assert.True(q.t().matmul(q).allclose(eye(width, dtype: ScalarType.Float64), rtol: 0, atol: 1e-14), "QᵀQ = I");
        Assert.True(r.tril(-1).eq(0).all().item<bool>(), "R upper triangular");
        Assert.True(r.diagonal().ge(0).all().item<bool>(), "R's diagonal non-negative");
        // LAPACK's R, its rows' signs made the same, is the same R.
        var lapack = linalg.qr(matrix).R;
        Assert.True(lapack.mul(lapack.diagonal().sign().unsqueeze(1)).allclose(r, rtol: 0, atol: 1e-12));
    }

    [Fact]
    public void Householder_qr_of_a_rank_deficient_matrix_still_gives_orthonormal_q()
    {
        using var scope = NewDisposeScope();
        const int rows = 200, width = 8;
        var data = Gaussian(rows * width, 12);
        Array.Clear(data, 3 * rows, rows);
        Array.Copy(data, 0, data, 5 * rows, rows);
        var q = ColumnMajor(new HouseholderQr(data, rows, width).Basis(new double[rows * width]), rows, width);
        Assert.True(q.t().matmul(q).allclose(eye(width, dtype: ScalarType.Float64), rtol: 0, atol: 1e-14));
    }

    [Fact]
    public void Jacobi_svd_matches_lapack_with_canonical_signs()
    {
        using var scope = NewDisposeScope();
        const int size = 32;
        // Singular values over twelve orders of magnitude: Jacobi keeps the small ones to relative accuracy.
        var values = Enumerable.Range(0, size).Select(i => Math.Pow(10, -12.0 * i / (size - 1))).ToArray();
        var u0 = linalg.qr(randn([size, size], ScalarType.Float64, generator: new Generator(13))).Q;
        var v0 = linalg.qr(randn([size, size], ScalarType.Float64, generator: new Generator(14))).Q;
        var matrix = u0.mul(tensor(values)).matmul(v0.t());
        var svd = new JacobiSvd(matrix.contiguous().data<double>().ToArray(), size);
        var u = ColumnMajor(svd.U, size, size);
        var v = ColumnMajor(svd.V, size, size);
        var s = tensor(svd.Values);
        var identity = eye(size, dtype: ScalarType.Float64);
        Assert.True(u.mul(s).matmul(v.t()).allclose(matrix, rtol: 0, atol: 1e-14), "U S Vᵀ = M");
        Assert.True(u.t().matmul(u).allclose(identity, rtol: 0, atol: 1e-13), "UᵀU = I");
        Assert.True(v.t().matmul(v).allclose(identity, rtol: 0, atol: 1e-13), "VᵀV = I");
        for (int i = 0; i < size; i++)
            Assert.True(Math.Abs(svd.Values[i] - values[i]) < 1e-3 * values[i], $"value {i}: {svd.Values[i]} vs {values[i]}");
        var largest = u.abs().argmax(0);
        Assert.True(u.gather(0, largest.unsqueeze(0)).gt(0).all().item<bool>(), "each column's largest entry positive");
        var lapack = linalg.svd(matrix, fullMatrices: false).S;
        Assert.True(s.allclose(lapack, rtol: 1e-12, atol: 1e-15));
    }

    [Fact]
    public void Jacobi_svd_of_a_singular_matrix_gives_zero_values_and_zero_left_columns()
    {
        var matrix = new double[] { 1, 2, 0, 2, 4, 0, 0, 0, 0 };
        var svd = new JacobiSvd(matrix, 3);
        Assert.Equal(5, svd.Values[0], 12);
        Assert.Equal([0.0, 0.0], svd.Values[1..]);
        Assert.Equal(new double[6], svd.U[3..]);
    }
}
