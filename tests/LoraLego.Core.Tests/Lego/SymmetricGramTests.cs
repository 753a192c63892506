using System.Runtime.InteropServices;
using LoraLego.Core.Clustering;
using LoraLego.Core.Formats;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Lego;

public class SymmetricGramTests
{
    // n rows of width columns, seeded, with magnitudes spread over several decades.
    private static Tensor Rows(int n, int width, ulong seed)
    {
        var random = new SplitMix64(seed);
        var values = new double[n * width];
        for (int i = 0; i < values.Length; i++)
            values[i] = (random.NextDouble() - 0.5) * Math.Pow(10, (i % 7) - 3);
        return tensor(values, [n, width]);
    }

    // Row counts that are and are not multiples of the 4-row blocks, column counts with and
    // without a tail past the 4-wide vectors and the 256-column slices.
    [Theory]
    [InlineData(1, 3, 0, 3)]
    [InlineData(7, 37, 0, 37)]
    [InlineData(16, 600, 0, 600)]
    [InlineData(13, 601, 250, 299)]
    [InlineData(130, 530, 5, 517)]
    public void Equals_the_matmul_of_the_columns_and_is_symmetric(int n, int width, int first, int count)
    {
        using var rows = Rows(n, width, (ulong)(n * 1000 + width));
        double[] gram = SymmetricGram.Of(MemoryMarshal.Cast<byte, double>(rows.bytes), n, width, first, count, threads: 1);
        using var part = rows.narrow(1, first, count);
        double[] expected = TensorBytes.ToArray<double>(part.matmul(part.t()));
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                Assert.Equal(gram[j * n + i], gram[i * n + j]);
                double scale = Math.Sqrt(expected[i * n + i] * expected[j * n + j]);
                Assert.True(Math.Abs(gram[i * n + j] - expected[i * n + j]) <= 1e-13 * scale,
                    $"G[{i},{j}] = {gram[i * n + j]:R}, matmul {expected[i * n + j]:R}");
            }
    }

    [Fact]
    public void Gives_the_same_bits_for_any_thread_count()
    {
        using var rows = Rows(37, 1000, 5);
        var span = MemoryMarshal.Cast<byte, double>(rows.bytes);
        double[] one = SymmetricGram.Of(span, 37, 1000, 0, 1000, threads: 1);
        foreach (int threads in new[] { 2, 3, 8 })
            Assert.Equal(one, SymmetricGram.Of(span, 37, 1000, 0, 1000, threads));
    }
}
