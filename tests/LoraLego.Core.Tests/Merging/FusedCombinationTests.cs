using LoraLego.Core.Adapters;
using LoraLego.Core.Merging;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Merging;

/// <summary>
/// The fused SIMD passes of the trimming _svd methods on the CPU: their combination is TaskCombiner's on the dense
/// updates (PEFT's semantics), whatever the shape, ranks, densities, weights and thread count.
/// </summary>
// In the libtorch-thread-count collection: the drop test sets libtorch to one thread for its reference.
[Collection(nameof(LibTorchThreadCount))]
public class FusedCombinationTests
{
    private const string Key = "model.layers.0.mlp.down_proj";

    public static TheoryData<MergeMethod, MajoritySign?, double, int, int> Cases => new()
    {
        // Odd column counts leave partial vectors; row counts that are not multiples of 4 leave partial tiles.
        { MergeMethod.TiesSvd, MajoritySign.Total, 0.5, 37, 53 },
        { MergeMethod.TiesSvd, MajoritySign.Frequency, 0.5, 37, 53 },
        { MergeMethod.TiesSvd, MajoritySign.Total, 0.1, 64, 16 },
        { MergeMethod.TiesSvd, MajoritySign.Frequency, 0.9, 5, 300 },
        { MergeMethod.TiesSvd, MajoritySign.Total, 1.0, 19, 24 },
        { MergeMethod.MagnitudePruneSvd, null, 0.3, 37, 53 },
        { MergeMethod.MagnitudePruneSvd, null, 0.7, 1, 9 },
        // Over 2^19 entries: the cut is selected inside the bracket a sample finds.
        { MergeMethod.TiesSvd, MajoritySign.Total, 0.5, 701, 803 },
        { MergeMethod.TiesSvd, MajoritySign.Frequency, 0.02, 701, 803 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_fused_combination_is_the_dense_one(MergeMethod method, MajoritySign? sign, double density, int rows, int columns)
    {
        // Mixed ranks, a negative weight, and one adapter with its own density.
        var inputs = new[]
        {
            Input(rows, columns, 16, 1, 0.6),
            Input(rows, columns, 5, 2, -0.3),
            Input(rows, columns, 3, 3, 0.9, Math.Min(1, density * 1.5)),
        };
        var combiner = TaskCombiner.For(method.Recipe(), new MergeOptions { MajoritySign = sign });
        using var module = ModuleInputs.Load(Key, inputs, density, CPU);
        Assert.True(FusedCombination.Covers(module));
        var deltas = module.Members.Select(m => m.Delta()).ToList();
        using var dense = combiner.Combine(deltas, module.Members.Select(m => m.Weight).ToList(), module.Densities, null);
        using var fused = FusedCombination.Combine(module, combiner, threads: 2);
        Assert.True(fused.ne(0).eq(dense.ne(0)).all().item<bool>(), $"the same entries survive ({fused.ne(0).ne(dense.ne(0)).sum().item<long>()} differ)");
        double scale = dense.abs().max().item<float>();
        Assert.True(fused.allclose(dense, rtol: 1e-6, atol: 1e-6 * scale), $"largest difference {(fused - dense).abs().max().item<float>()} of {scale}");
        foreach (var d in deltas)
            d.Dispose();
    }

    [Theory]
    [InlineData(MajoritySign.Total)]
    [InlineData(MajoritySign.Frequency)]
    public void One_and_two_threads_give_the_same_bytes(MajoritySign sign)
    {
        var inputs = Enumerable.Range(0, 4).Select(i => Input(701, 803, 16, 10 + i, 1.0 / (i + 1))).ToArray();
        var combiner = TaskCombiner.For(MergeMethod.TiesSvd.Recipe(), new MergeOptions { MajoritySign = sign });
        using var module = ModuleInputs.Load(Key, inputs, 0.5, CPU);
        using var one = FusedCombination.Combine(module, combiner, threads: 1);
        using var two = FusedCombination.Combine(module, combiner, threads: 2);
        Assert.Equal(one.bytes.ToArray(), two.bytes.ToArray());
    }

    public static TheoryData<MergeMethod, MajoritySign?, int, int> Drops => new()
    {
        // Partial tiles and vectors; then 20000 columns, whose rows come in bands of 192, so the draws cross bands.
        { MergeMethod.DareLinearSvd, null, 37, 53 },
        { MergeMethod.DareTiesSvd, MajoritySign.Total, 37, 53 },
        { MergeMethod.DareTiesSvd, MajoritySign.Frequency, 5, 300 },
        { MergeMethod.DareLinearSvd, null, 301, 20000 },
        { MergeMethod.DareTiesSvd, MajoritySign.Total, 301, 20000 },
    };

    [Theory]
    [MemberData(nameof(Drops))]
    public void Dropped_combinations_have_the_bytes_of_the_tiled_combination_at_any_thread_count(MergeMethod method, MajoritySign? sign, int rows, int columns)
    {
        // Mixed ranks, a negative weight, one adapter that keeps everything (it draws nothing) and one with its own density.
        var inputs = new[]
        {
            Input(rows, columns, 16, 31, 0.6),
            Input(rows, columns, 5, 32, -0.3, 1.0),
            Input(rows, columns, 3, 33, 0.9, 0.3),
            Input(rows, columns, 16, 34, 0.4),
        };
        var combiner = TaskCombiner.For(method.Recipe(), new MergeOptions { MajoritySign = sign });
        using var module = ModuleInputs.Load(Key, inputs, 0.5, CPU);
        // The fused kernel reproduces libtorch's one-thread block products; with more threads libtorch's GEMM rounds some
        // small shapes (5 x 300 here) differently, so the reference is made at one thread.
        int before = get_num_threads();
        set_num_threads(1);
        Tensor tiled;
        try
        {
            tiled = TiledCombination.Combine(module, combiner, RandomDrop.ForModule(42, Key));
        }
        finally
        {
            set_num_threads(before);
        }
        using var reference = tiled;
        using var one = FusedCombination.Combine(module, combiner, threads: 1, random: RandomDrop.ForModule(42, Key));
        using var two = FusedCombination.Combine(module, combiner, threads: 2, random: RandomDrop.ForModule(42, Key));
        Assert.True(reference.bytes.SequenceEqual(one.bytes), $"{reference.ne(one).sum().item<long>()} entries differ from the tiled combination's");
        Assert.True(one.bytes.SequenceEqual(two.bytes));
        Assert.True(one.ne(0).any().item<bool>());
    }

    [Fact]
    public void A_workspace_reused_across_modules_of_different_shapes_gives_the_tiled_combinations_bytes()
    {
        var combiner = TaskCombiner.For(MergeMethod.TiesSvd.Recipe(), new MergeOptions { MajoritySign = MajoritySign.Total });
        // Large enough to sample a bracket, then smaller, then a little smaller than the first but still sampled (over 2^19
        // entries, where the padding's entries would be counted against the bracket): each module's factors, samples and
        // brackets land in arrays the one before filled, whose padding must read as zeros again. The reference is
        // libtorch's tiled combination, which shares none of the workspace's memory.
        var shapes = new[] { (811, 803), (37, 53), (781, 701) };
        using var workspace = new CombinationWorkspace();
        foreach (var (rows, columns) in shapes)
        {
            var inputs = Enumerable.Range(0, 3).Select(i => Input(rows, columns, 16, 20 + i, 1.0 / (i + 1))).ToArray();
            using var module = ModuleInputs.Load(Key, inputs, 0.5, CPU);
            using var reference = TiledCombination.Combine(module, combiner, null);
            using var reused = FusedCombination.Combine(module, combiner, threads: 2, workspace);
            Assert.Equal(new long[] { rows, columns }, reused.shape);
            Assert.True(reference.bytes.SequenceEqual(reused.bytes), $"{rows} x {columns}: {reference.ne(reused).sum().item<long>()} entries differ");
        }
    }

    [Fact]
    public void Exact_ties_at_the_cut_keep_the_first_entries_in_row_major_order()
    {
        // Rank 1 with entries of +-1: every magnitude is 1, so of the 90 entries the cut keeps floor(0.45 * 90) = 40,
        // the first 40 (row-major), with their signs.
        using var a = arange(9).remainder(2).mul(2).sub(1).to(ScalarType.Float32).view(1, 9);
        using var b = ones(10, 1);
        var adapter = new LoraAdapter("ties", null, "PEFT", Config(1), [LoraModule.FromFactors(Key, a, b, 1.0)]);
        var combiner = TaskCombiner.For(MergeMethod.MagnitudePruneSvd.Recipe(), new MergeOptions());
        using var module = ModuleInputs.Load(Key, [new MergeInput(adapter, 1.0)], 0.45, CPU);
        using var fused = FusedCombination.Combine(module, combiner, threads: 2);
        using var expected = b.matmul(a).reshape(-1).mul(arange(90).lt(40)).view(10, 9);
        Assert.True(fused.eq(expected).all().item<bool>());
    }

    public static TheoryData<string, MajoritySign?> Brackets => new()
    {
        // Brackets that miss the k-th largest from above or below, the wide retry's too: the cut is selected from every
        // entry, the pass runs again.
        { "miss above", MajoritySign.Total },
        { "miss below", MajoritySign.Frequency },
        { "miss above", null },
        // The first bracket misses, the wide retry holds the k-th largest: the cut from the retry, the pass again.
        { "miss above once", MajoritySign.Total },
        { "miss below once", null },
        // Estimates at the bracket's ends: every entry inside is decided provisionally one way, many are recombined.
        { "estimate low", MajoritySign.Total },
        { "estimate high", MajoritySign.Frequency },
        { "estimate high", null },
    };

    [Theory]
    [MemberData(nameof(Brackets))]
    public void Any_bracket_gives_the_bytes_of_the_sampled_one_and_the_tiled_combination(string bracket, MajoritySign? sign)
    {
        // Over 2^19 entries, so the cuts are sampled; small integer factors make many magnitudes equal, ties at the cut among them.
        var inputs = new[] { TiedInput(701, 803, 1, 21, 0.7), TiedInput(701, 803, 2, 22, -0.4), TiedInput(701, 803, 1, 23, 1.0, 0.3), TiedInput(701, 803, 3, 24, 0.5) };
        var method = sign is null ? MergeMethod.MagnitudePruneSvd : MergeMethod.TiesSvd;
        var combiner = TaskCombiner.For(method.Recipe(), new MergeOptions { MajoritySign = sign });
        Func<MagnitudeCut.SampledCut, MagnitudeCut.SampledCut> change = bracket switch
        {
            "miss above" => Above,
            "miss below" => Below,
            "miss above once" => s => s.Deviations == MagnitudeCut.SampledCut.WideDeviations ? s : Above(s),
            "miss below once" => s => s.Deviations == MagnitudeCut.SampledCut.WideDeviations ? s : Below(s),
            "estimate low" => s => s with { Estimate = s.Lo },
            _ => s => s with { Estimate = s.Hi },
        };
        // Brackets above every magnitude, or below: nothing inside, so neither can hold the k-th largest.
        static MagnitudeCut.SampledCut Above(MagnitudeCut.SampledCut s) => s with { Lo = float.MaxValue, Hi = float.MaxValue, Estimate = float.MaxValue };
        static MagnitudeCut.SampledCut Below(MagnitudeCut.SampledCut s) => s with { Lo = -1, Hi = -1, Estimate = -1 };
        using var module = ModuleInputs.Load(Key, inputs, 0.5, CPU);
        using var sampled = FusedCombination.Combine(module, combiner, threads: 2);
        bool retried = false;
        using var changed = FusedCombination.Combine(module, combiner, threads: 2, s =>
        {
            retried |= s.Deviations == MagnitudeCut.SampledCut.WideDeviations;
            return change(s);
        });
        Assert.Equal(sampled.bytes.ToArray(), changed.bytes.ToArray());
        Assert.Equal(bracket.StartsWith("miss"), retried);
        // The libtorch route applies the same tie rule to the same (exact, integer) entries; top-k's choice among ties is its own.
        using var reference = TiledCombination.Combine(module, combiner, null);
        Assert.True(changed.ne(0).eq(reference.ne(0)).all().item<bool>(), $"the same entries survive ({changed.ne(0).ne(reference.ne(0)).sum().item<long>()} differ)");
        double scale = reference.abs().max().item<float>();
        Assert.True(changed.allclose(reference, rtol: 1e-6, atol: 1e-6 * scale), $"largest difference {(changed - reference).abs().max().item<float>()} of {scale}");
    }

    [Fact]
    public void A_bracket_drawn_narrow_misses_and_settles_nothing()
    {
        // The seam the fallback tests use: a bracket shrunk to its upper end holds fewer entries than the cut needs.
        var g = manual_seed(5);
        using var magnitudes = rand(1 << 20, generator: g);
        long keep = 1 << 19;
        var values = magnitudes.data<float>().ToArray();
        var drawn = MagnitudeCut.SampledCut.Draw(values.Length, keep, indices => indices.Select(i => values[i]).ToArray())!;
        Assert.InRange(drawn.Estimate, drawn.Lo, drawn.Hi);
        var narrow = drawn with { Lo = drawn.Hi };
        Assert.Null(narrow.Settle(CountInside(values, narrow.Lo, narrow.Hi)));
        Assert.Equal(MagnitudeCut.Of(magnitudes, 0.5), MagnitudeCut.SelectAll(keep, (lo, hi) => CountInside(values, lo, hi)));
    }

    // The entries of values inside [lo, hi] with their indices, and how many lie above: what a counting pass finds.
    private static MagnitudeCut.BracketCount CountInside(float[] values, float lo, float hi)
    {
        var inside = Enumerable.Range(0, values.Length).Where(i => values[i] >= lo && values[i] <= hi).ToArray();
        return new MagnitudeCut.BracketCount(inside.Select(i => values[i]).ToArray(), inside.Select(i => (long)i).ToArray(), values.Count(v => v > hi));
    }

    [Fact]
    public void A_missed_bracket_is_retried_wider_before_every_entry_is_counted()
    {
        var g = manual_seed(6);
        using var magnitudes = rand(1 << 20, generator: g);
        long keep = 3 << 18;
        var values = magnitudes.data<float>().ToArray();
        var counted = new List<(float Lo, float Hi)>();
        MagnitudeCut.BracketCount Counted(float lo, float hi)
        {
            counted.Add((lo, hi));
            return CountInside(values, lo, hi);
        }
        Memory<float> Sample(long[] indices) => indices.Select(i => values[i]).ToArray();
        var expected = MagnitudeCut.Of(magnitudes, 0.75);

        var narrow = MagnitudeCut.SampledCut.Draw(values.Length, keep, Sample)!;
        Assert.Equal(expected, MagnitudeCut.Reselect(values.Length, keep, Sample, Counted));
        var wide = Assert.Single(counted);
        // The retry's bracket holds the first one, about three times as wide.
        Assert.True(wide.Lo < narrow.Lo && wide.Hi > narrow.Hi, $"[{wide.Lo}, {wide.Hi}] around [{narrow.Lo}, {narrow.Hi}]");
        Assert.InRange((wide.Hi - wide.Lo) / (narrow.Hi - narrow.Lo), 2.5, 3.5);

        counted.Clear();
        Assert.Equal(expected, MagnitudeCut.Reselect(values.Length, keep, Sample, Counted, s => s with { Hi = s.Lo }));
        Assert.Equal(2, counted.Count);
        Assert.Equal((0f, float.PositiveInfinity), counted[1]);
    }

    // Factors of small integers (scaled by 2): products of a few distinct magnitudes, so many entries tie.
    private static MergeInput TiedInput(int rows, int columns, int rank, int seed, double weight, double? density = null)
    {
        var g = manual_seed(seed);
        using var a = randint(1, 4, [rank, columns], generator: g).mul(randint(0, 2, [rank, columns], generator: g).mul(2).sub(1)).to(ScalarType.Float32);
        using var b = randint(1, 3, [rows, rank], generator: g).mul(randint(0, 2, [rows, rank], generator: g).mul(2).sub(1)).to(ScalarType.Float32);
        var module = LoraModule.FromFactors(Key, a, b, 2.0);
        return new MergeInput(new LoraAdapter($"tied{seed}", null, "PEFT", Config(rank), [module]), weight, density);
    }

    private static MergeInput Input(int rows, int columns, int rank, int seed, double weight, double? density = null)
    {
        var g = manual_seed(seed);
        var module = LoraModule.FromFactors(Key, randn(rank, columns, generator: g).div_(Math.Sqrt(columns)), randn(rows, rank, generator: g).mul_(0.01), 2.0);
        return new MergeInput(new LoraAdapter($"t{seed}", null, "PEFT", Config(rank), [module]), weight, density);
    }

    private static AdapterConfig Config(int rank) => new(new System.Text.Json.Nodes.JsonObject { ["r"] = rank, ["lora_alpha"] = 2 * rank });
}
