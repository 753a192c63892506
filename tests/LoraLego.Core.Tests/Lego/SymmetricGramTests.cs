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
    // without a tail past the 4- and 8-wide vectors and the 256-column slices.
    public static TheoryData<int, int, int, int> Shapes => new()
    {
        { 1, 3, 0, 3 },
        { 7, 37, 0, 37 },
        { 16, 600, 0, 600 },
        { 13, 601, 250, 299 },
        { 130, 530, 5, 517 },
        { 130, 4100, 5, 4090 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Equals_the_matmul_of_the_columns_and_is_symmetric(int n, int width, int first, int count)
    {
        using var rows = Rows(n, width, (ulong)(n * 1000 + width));
        double[] gram = SymmetricGram.Of(MemoryMarshal.Cast<byte, double>(rows.bytes), n, width, first, count, threads: 1);
        AssertNear(gram, rows, first, count, 1e-13);
    }

    // Symmetric, and each entry within tolerance * |x_i| |x_j| of the float64 matmul of the columns.
    private static void AssertNear(double[] gram, Tensor rows, int first, int count, double tolerance)
    {
        int n = (int)rows.shape[0];
        using var part = rows.narrow(1, first, count);
        double[] expected = TensorBytes.ToArray<double>(part.matmul(part.t()));
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                Assert.Equal(gram[j * n + i], gram[i * n + j]);
                double scale = Math.Sqrt(expected[i * n + i] * expected[j * n + j]);
                Assert.True(Math.Abs(gram[i * n + j] - expected[i * n + j]) <= tolerance * scale,
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

    // F16 values, as a merge's float32 rows hold them: the products are exact in float32, so only the float32 sums
    // within each 256-column slice (32 products per lane) round; the bound is theirs, |G - G64| <= 32 u sum |x_c y_c|
    // <= 32 u |x| |y| with u = 2^-24.
    [Theory]
    [MemberData(nameof(Shapes))]
    public void Float32_rows_are_summed_in_float32_only_within_a_slice(int n, int width, int first, int count)
    {
        using var half = Rows(n, width, (ulong)(n * 1000 + width)).to_type(ScalarType.Float16);
        using var rows = half.to_type(ScalarType.Float32);
        using var wide = half.to_type(ScalarType.Float64);
        double[] gram = SymmetricGram.Of(MemoryMarshal.Cast<byte, float>(rows.bytes), n, width, first, count, threads: 1);
        AssertNear(gram, wide, first, count, 32 * Math.Pow(2, -24));
    }

    // A lane that starts at 1 then adds products of 2^-26, under half of float32's last place at 1: every one is lost
    // until the slice's sum moves to float64, so a row summed in float32 from end to end would be 7e-6 short.
    [Fact]
    public void A_large_product_swallows_small_ones_only_within_its_slice()
    {
        const int width = 4096;
        var rows = new float[2 * width];
        for (int c = 0; c < rows.Length; c++)
            rows[c] = c % width == 0 ? 1f : MathF.Pow(2, -13);
        double[] gram = SymmetricGram.Of(rows, 2, width, 0, width, threads: 1);
        double exact = 1 + (width - 1) * Math.Pow(2, -26);
        Assert.InRange(exact - gram[1], 0, 32 * Math.Pow(2, -24) * exact);
    }

    [Fact]
    public void Float32_rows_give_the_same_bits_for_any_thread_count()
    {
        using var rows = Rows(37, 1000, 5).to_type(ScalarType.Float32);
        var span = MemoryMarshal.Cast<byte, float>(rows.bytes);
        double[] one = SymmetricGram.Of(span, 37, 1000, 0, 1000, threads: 1);
        foreach (int threads in new[] { 2, 3, 8 })
            Assert.Equal(one, SymmetricGram.Of(span, 37, 1000, 0, 1000, threads));
    }
}
