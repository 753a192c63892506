using LoraLego.Core.Merging;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Merging;

/// <summary>
/// The drop masks drawn in C# (<see cref="Mt19937"/>, <see cref="TorchBernoulli"/>) against libtorch's own
/// bernoulli on a CPU generator of the same seed, bit for bit: the masks DARE drew before, so a seed keeps its merge.
/// </summary>
public class TorchBernoulliTests
{
    // 2^32 + 7 and the large ones exercise seeds whose high bits torch ignores; 0x5EED... is a ForModule-like seed.
    public static readonly ulong[] Seeds = [0, 1, 42, (1UL << 32) + 7, 0x5EED_1234_ABCD_0077, long.MaxValue];

    public static readonly ScalarType[] DTypes = [ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16, ScalarType.Float64];

    // 0.3 is a different value in float16 and bfloat16; the last two sit a hair above a float16 (bfloat16) tie, so a
    // direct rounding goes up where torch's (through float32) goes down to the even neighbour.
    public static readonly double[] Densities = [0.1, 0.5, 0.9, 1.0 / 3, 0.3, 0.5 + Math.Pow(2, -12) + Math.Pow(2, -40), 0.5 + Math.Pow(2, -9) + Math.Pow(2, -40)];

    // Sizes below, at and past the 624-word state, not multiples of it or of a vector's width, and one of millions.
    public static readonly long[][] Shapes = [[1], [7], [624], [625], [13, 97], [312, 5], [1201, 1733]];

    public static TheoryData<ulong, ScalarType> SeedsAndDTypes()
    {
        var data = new TheoryData<ulong, ScalarType>();
        foreach (var seed in Seeds)
            foreach (var dtype in DTypes)
                data.Add(seed, dtype);
        return data;
    }

    [Theory]
    [MemberData(nameof(SeedsAndDTypes))]
    public void Every_mask_is_torchs_bernoulli_of_the_density_in_that_dtype(ulong seed, ScalarType dtype)
    {
        // One engine and one generator through every shape and density in turn, so each draw also resumes the last.
        using var generator = new Generator(seed, CPU);
        var engine = new Mt19937(seed);
        foreach (var shape in Shapes)
            foreach (double density in Densities)
            {
                using var scope = NewDisposeScope();
                var expected = full(shape, density, dtype).bernoulli(generator);
                var drawn = RandomDrop.Keep(empty(shape, dtype), density, engine);
                Assert.True(Same(expected, drawn), $"seed {seed}, {dtype}, [{string.Join(", ", shape)}], density {density}: {expected.ne(drawn).sum().item<long>()} outcomes differ");
            }
    }

    [Theory]
    [InlineData(ScalarType.Float32, 7L)]
    [InlineData(ScalarType.Float32, 1000L)]
    [InlineData(ScalarType.Float64, 311L)]
    [InlineData(ScalarType.BFloat16, 2000L)]
    public void A_mask_drawn_block_by_block_is_the_mask_drawn_whole(ScalarType dtype, long blockRows)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(9, CPU);
        var engine = new Mt19937(9);
        var whole = full(new long[] { 4099, 65 }, 0.4, dtype).bernoulli(generator);
        var blocks = new List<Tensor>();
        for (long start = 0; start < 4099; start += blockRows)
            blocks.Add(RandomDrop.Keep(empty(Math.Min(blockRows, 4099 - start), 65, dtype), 0.4, engine));
        Assert.True(Same(whole, cat(blocks, 0)));
    }

    [Theory]
    [InlineData(ScalarType.Float32, 0L)]
    [InlineData(ScalarType.Float32, 623L)]
    [InlineData(ScalarType.Float32, 624L)]
    [InlineData(ScalarType.Float32, 100_003L)]
    [InlineData(ScalarType.Float64, 100_003L)]
    [InlineData(ScalarType.Float16, 1_000_000L)]
    public void Skipping_a_tasks_draws_lands_where_drawing_them_does(ScalarType dtype, long skipped)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(77, CPU);
        var engine = new Mt19937(77);
        if (skipped > 0)
            full(new[] { skipped }, 0.6, dtype).bernoulli(generator);
        TorchBernoulli.Skip(engine, dtype, skipped);
        var expected = full(new long[] { 3001 }, 0.6, dtype).bernoulli(generator);
        Assert.True(Same(expected, RandomDrop.Keep(empty(3001, dtype), 0.6, engine)));
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(1.0 / 3)]
    [InlineData(0.3)]
    [InlineData(0.7)]
    public void Dropping_in_place_gives_the_bits_of_the_tensor_drop(double density)
    {
        // Signed values, tiny and huge ones, so that signed zeros and every rounding of the quotient are compared as bits.
        using var scope = NewDisposeScope();
        var task = randn(new long[] { 1031, 37 }, generator: new Generator(3)).mul(pow(10, randint(-40, 30, new long[] { 1031, 37 }, generator: new Generator(4)).to(ScalarType.Float32)));
        var expected = RandomDrop.Apply(task, density, new Mt19937(11));
        var inPlace = task.clone();
        RandomDrop.ApplyInPlace(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(inPlace.bytes), density, new Mt19937(11));
        Assert.True(expected.bytes.SequenceEqual(inPlace.bytes));
        Assert.True(inPlace.eq(0).any().item<bool>() && inPlace.signbit().logical_and(inPlace.eq(0)).any().item<bool>(), "negative zeros are compared");
    }

    [Theory]
    [InlineData(ScalarType.Float32, 0.5)]
    [InlineData(ScalarType.Float16, 0.3)]
    [InlineData(ScalarType.BFloat16, 0.9)]
    public void Outcomes_drawn_as_bits_are_the_outcomes_drawn_as_floats(ScalarType dtype, double density)
    {
        // Counts that end mid-byte and cross the 1024-word chunks, one engine resumed through all of them.
        int[] counts = [1, 7, 8, 1031, 3001, 2048];
        var asFloats = new Mt19937(17);
        var asBits = new Mt19937(17);
        foreach (int count in counts)
        {
            var expected = new float[count];
            TorchBernoulli.Draw(asFloats, density, dtype, expected);
            var bits = Enumerable.Repeat((byte)0xff, (count + 7) / 8 + 1).ToArray();
            TorchBernoulli.DrawBits(asBits, density, dtype, count, bits);
            Assert.Equal(expected, Enumerable.Range(0, count).Select(j => (float)((bits[j / 8] >> (j % 8)) & 1)));
            Assert.Equal(0, count % 8 == 0 ? 0 : bits[count / 8] >> (count % 8));
        }
    }

    [Fact]
    public void The_engine_draws_the_reference_mersenne_twister_words()
    {
        // Matsumoto and Nishimura's init_genrand(5489): the 10000th word of std::mt19937 is 4123659995.
        var engine = new Mt19937(5489);
        engine.Skip(9999);
        Assert.Equal(4123659995u, engine.Next());
    }

    [Fact]
    public void Bernoulli_draws_refuse_a_dtype_that_is_not_floating_point() =>
        Assert.Throws<ArgumentException>(() => TorchBernoulli.Draw(new Mt19937(1), 0.5, ScalarType.Int32, new float[4]));

    private static bool Same(Tensor expected, Tensor drawn) =>
        expected.dtype == drawn.dtype && expected.shape.SequenceEqual(drawn.shape) && expected.eq(drawn).all().item<bool>();
}
