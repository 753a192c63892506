using LoraLego.Core.Merging;
using LoraLego.Core.Surgery;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Surgery;

/// <summary>The randomized range finder against the dense SVD, on matrices large enough that the sketch is used.</summary>
public class RandomizedSvdTests
{
    private static Tensor WithSpectrum(int rows, int cols, double[] values, long seed)
    {
        var generator = new TorchSharp.torch.Generator((ulong)seed);
        var u = linalg.qr(randn([rows, values.Length], ScalarType.Float64, generator: generator)).Q;
        var v = linalg.qr(randn([cols, values.Length], ScalarType.Float64, generator: generator)).Q;
        return u.mul(tensor(values)).matmul(v.t());
    }

    [Fact]
    public void An_exactly_low_rank_matrix_is_recovered()
    {
        using var scope = NewDisposeScope();
        var values = Enumerable.Range(0, 8).Select(i => 10.0 / (i + 1)).ToArray();
        var matrix = WithSpectrum(300, 200, values, 1).to_type(ScalarType.Float32);
        var svd = RandomizedSvd.Of(matrix, 8, 10, 2, new TorchSharp.torch.Generator(5));
        var (a, b) = svd.Truncate(8, ScalarType.Float64);
        double error = b.matmul(a).sub(matrix.to_type(ScalarType.Float64)).norm().item<double>() / matrix.to_type(ScalarType.Float64).norm().item<double>();
        Assert.True(error < 1e-6, $"relative error {error}");
    }

    [Fact]
    public void Leading_singular_values_of_a_decaying_spectrum_match_the_dense_svd()
    {
        using var scope = NewDisposeScope();
        // A decaying head over a slowly decaying tail, as fine-tuning deltas have.
        var values = Enumerable.Range(0, 150).Select(i => i < 16 ? Math.Pow(0.8, i) : 1e-2 * Math.Pow(0.98, i)).ToArray();
        var matrix = WithSpectrum(400, 300, values, 2);
        var s = RandomizedSvd.Of(matrix, 16, 10, 2, new TorchSharp.torch.Generator(3)).ToArray();
        for (int i = 0; i < 16; i++)
            Assert.True(Math.Abs(s[i] - values[i]) < 1e-5 * values[0], $"value {i}: {s[i]} vs {values[i]}");
    }

    [Fact]
    public void The_row_block_route_finds_the_leading_singular_values_of_a_decaying_spectrum()
    {
        using var scope = NewDisposeScope();
        var values = Enumerable.Range(0, 300).Select(i => i < 16 ? Math.Pow(0.8, i) : 1e-2 * Math.Pow(0.98, i)).ToArray();
        // 701 x 515: neither a multiple of the 4-row groups nor of the 32-column panels.
        var matrix = WithSpectrum(701, 515, values, 4);
        var s = RandomizedSvd.OfRowBlocks(matrix.to_type(ScalarType.Float32), 16, 10, 2, new TorchSharp.torch.Generator(3), threads: 2).ToArray();
        for (int i = 0; i < 16; i++)
            Assert.True(Math.Abs(s[i] - values[i]) < 1e-4 * values[0], $"value {i}: {s[i]} vs {values[i]}");
    }

    [Fact]
    public void The_row_block_route_is_as_close_to_the_optimal_rank_k_residual_as_the_product_route()
    {
        using var scope = NewDisposeScope();
        // A slowly decaying spectrum: the leading subspace is hard to separate, so the residual tells the routes apart.
        var values = Enumerable.Range(0, 300).Select(i => Math.Pow(0.99, i)).ToArray();
        var matrix = WithSpectrum(900, 600, values, 5).to_type(ScalarType.Float32);
        var exact = matrix.to_type(ScalarType.Float64);
        double optimal = Math.Sqrt(values.Skip(16).Sum(v => v * v));
        double Residual(SingularFactors svd)
        {
            var (a, b) = svd.Truncate(16, ScalarType.Float64);
            return exact.sub(b.matmul(a)).norm().item<double>() / optimal;
        }
        double products = Residual(RandomizedSvd.Of(matrix, 16, 10, 2, new TorchSharp.torch.Generator(7)));
        double rowBlocks = Residual(RandomizedSvd.OfRowBlocks(matrix, 16, 10, 2, new TorchSharp.torch.Generator(7), threads: 2));
        Assert.True(rowBlocks <= products, $"residual / optimal: row blocks {rowBlocks}, products {products}");
        Assert.True(rowBlocks < 1.01, $"residual / optimal {rowBlocks}");
    }

    [Fact]
    public void The_row_block_route_gives_the_same_bytes_at_one_and_two_threads()
    {
        using var scope = NewDisposeScope();
        var values = Enumerable.Range(0, 200).Select(i => Math.Pow(0.95, i)).ToArray();
        var matrix = WithSpectrum(1000, 300, values, 6).to_type(ScalarType.Float32);
        var one = RandomizedSvd.OfRowBlocks(matrix, 16, 10, 2, new TorchSharp.torch.Generator(9), threads: 1);
        var two = RandomizedSvd.OfRowBlocks(matrix, 16, 10, 2, new TorchSharp.torch.Generator(9), threads: 2);
        Assert.Equal(one.ToArray(), two.ToArray());
        Assert.Equal(one.Left.data<double>().ToArray(), two.Left.data<double>().ToArray());
        Assert.Equal(one.Right.data<double>().ToArray(), two.Right.data<double>().ToArray());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_start_near_the_leading_directions_needs_fewer_power_iterations_on_either_route(bool rowBlocks)
    {
        using var scope = NewDisposeScope();
        // The slowly decaying spectrum above; the start is its leading right singular directions, slightly perturbed.
        var values = Enumerable.Range(0, 300).Select(i => Math.Pow(0.99, i)).ToArray();
        var generator = new TorchSharp.torch.Generator(8);
        var u = linalg.qr(randn([900, 300], ScalarType.Float64, generator: generator)).Q;
        var v = linalg.qr(randn([600, 300], ScalarType.Float64, generator: generator)).Q;
        var exact = u.mul(tensor(values)).matmul(v.t());
        var matrix = exact.to_type(ScalarType.Float32);
        double optimal = Math.Sqrt(values.Skip(16).Sum(x => x * x));
        var near = linalg.qr(v[.., ..18].add(randn([600, 18], ScalarType.Float64, generator: generator).mul(0.01))).Q;
        var start = (near.t().contiguous().data<double>().ToArray(), 18);
        double Residual(int iterations, (double[], int)? given)
        {
            var svd = rowBlocks
                ? RandomizedSvd.OfRowBlocks(matrix, 16, 10, iterations, new TorchSharp.torch.Generator(7), threads: 2, given)
                : RandomizedSvd.Of(matrix, 16, 10, iterations, new TorchSharp.torch.Generator(7), given);
            var (a, b) = svd.Truncate(16, ScalarType.Float64);
            return exact.sub(b.matmul(a)).norm().item<double>() / optimal;
        }
        double started = Residual(0, start), gaussian = Residual(2, null);
        Assert.True(started < gaussian, $"residual / optimal: started, no iteration {started}; Gaussian, two {gaussian}");
        Assert.True(started < 1.001, $"residual / optimal {started}");
    }
}
