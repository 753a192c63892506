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
}
