using LoraLego.Core.Adapters;
using LoraLego.Core.Merging;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Merging;

/// <summary>
/// The default path of the trimming _svd methods: the combination built block by block equals the dense one, and the
/// randomized range finder's rank-k result is close to the full SVD's.
/// </summary>
public class TrimmedSvdTests(ITestOutputHelper output)
{
    private const string Key = "model.layers.0.mlp.gate_proj";

    public static TheoryData<MergeMethod, MajoritySign?> Trimmings => new()
    {
        { MergeMethod.TiesSvd, MajoritySign.Total },
        { MergeMethod.TiesSvd, MajoritySign.Frequency },
        { MergeMethod.MagnitudePruneSvd, null },
        { MergeMethod.DareLinearSvd, null },
        { MergeMethod.DareTiesSvd, MajoritySign.Frequency },
    };

    [Theory]
    [MemberData(nameof(Trimmings))]
    public void The_combination_built_block_by_block_is_the_dense_one(MergeMethod method, MajoritySign? sign)
    {
        // gate_proj maps 64 -> 128; blocks of 7 rows leave a short last block. Ranks 8, 8, 4 as the fixtures a, b, c.
        var inputs = new[] { new MergeInput(MergeFixtures.Adapter("a"), 0.6), new MergeInput(MergeFixtures.Adapter("b"), -0.3), new MergeInput(MergeFixtures.Adapter("c"), 0.9, 0.7) };
        var combiner = TaskCombiner.For(method.Recipe(), new MergeOptions { MajoritySign = sign });
        using var module = ModuleInputs.Load(Key, inputs, 0.4, CPU);
        var denseRandom = RandomDrop.ForModule(5, Key);
        var tiledRandom = RandomDrop.ForModule(5, Key);
        var deltas = module.Members.Select(m => m.Delta()).ToList();
        using var dense = combiner.Combine(deltas, module.Members.Select(m => m.Weight).ToList(), module.Densities, denseRandom);
        using var tiled = TiledCombination.Combine(module, combiner, tiledRandom, blockEntries: 7 * 64);
        Assert.True(tiled.ne(0).eq(dense.ne(0)).all().item<bool>(), "the same entries survive");
        double scale = dense.abs().max().item<float>();
        Assert.True(tiled.allclose(dense, rtol: 1e-6, atol: 1e-6 * scale), $"largest difference {(tiled - dense).abs().max().item<float>()} of {scale}");
        Assert.True(tiled.ne(0).to(ScalarType.Float32).mean().item<float>() is > 0.2f and < 0.95f);
    }

    [Fact]
    public void Exact_ties_at_the_cut_keep_exactly_density_of_the_entries()
    {
        // Every magnitude is 1: top-k keeps floor(density * n) of them, so must the cut, whatever the blocks.
        using var magnitudes = ones(10 * 9);
        var cut = MagnitudeCut.Of(magnitudes, 0.45);
        using var values = arange(90).remainder(2).mul(2).sub(1).to(ScalarType.Float32).view(10, 9);
        long kept = 0;
        for (int start = 0; start < 10; start += 4)
        {
            using var block = cut.Apply(values.narrow(0, start, Math.Min(4, 10 - start)), start * 9);
            kept += block.ne(0).sum().item<long>();
        }
        Assert.Equal(40, kept);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.01)]
    [InlineData(0.999)]
    public void A_cut_found_from_a_bracketing_sample_keeps_what_top_k_keeps(double density)
    {
        // Two million entries: the cut selects inside a bracket a sample found, not over all of them.
        using var values = randn(2000, 1000, generator: manual_seed(9));
        var cut = MagnitudeCut.Of(values.abs().reshape(-1), density);
        using var trimmed = cut.Apply(values, 0);
        using var expected = MagnitudeTrim.Apply(values, density);
        Assert.True(trimmed.eq(expected).all().item<bool>());
    }

    [Fact]
    public void The_randomized_rank_k_result_is_close_to_the_dense_one()
    {
        // Eight rank-16 adapters of a 1200 x 900 module with decaying spectra (as trained adapters have), TIES at
        // density 0.5: the trimmed sum is full rank, its tail the trimming's noise. Where the spectrum is flat
        // (docs/benchmarks.md) any rank-k subspace of the top is as good, and only the residual ratio means anything.
        var inputs = DecayingAdapters();
        var log = new List<string>();
        var fast = StandardMerge.Merge(inputs, MergeMethod.TiesSvd, new MergeOptions { Density = 0.5, Rank = 16, Verbose = log.Add });
        var dense = StandardMerge.Merge(inputs, MergeMethod.TiesSvd, new MergeOptions { Density = 0.5, Rank = 16, DenseSvd = true });
        var whole = StandardMerge.Merge(inputs, MergeMethod.TiesSvd, new MergeOptions { Density = 0.5, Rank = 900, DenseSvd = true });
        using var approx = fast.Modules[0].Delta();
        using var best = dense.Modules[0].Delta();
        using var combined = whole.Modules[0].Delta();
        double relative = MergeFixtures.RelativeError(approx, best);
        double residualRatio = MergeFixtures.RelativeError(approx, combined) / MergeFixtures.RelativeError(best, combined);
        output.WriteLine($"relative difference {relative:E2}, residual over the optimal {residualRatio:F5}");
        Assert.Contains(log, l => l.Contains("randomized range finder"));
        Assert.Equal(16, fast.Modules[0].Rank);
        // The range finder started from the untrimmed sum: 4.1e-3 and 1.00001 (from a Gaussian sketch: 8.1e-3 and 1.00004).
        Assert.InRange(residualRatio, 1.0 - 1e-6, 1.0001);
        Assert.True(relative < 0.006, $"relative difference {relative}");
    }

    /// <summary>Eight rank-16 adapters of one 1200 x 900 module, their spectra decaying as trained adapters' do.</summary>
    internal static List<MergeInput> DecayingAdapters() => Enumerable.Range(0, 8).Select(i =>
    {
        var g = manual_seed(300 + i);
        using var decay = arange(16).mul(-0.3).exp_().div_(1 + i);
        var module = LoraModule.FromFactors(Key, randn(16, 900, generator: g).div_(30), randn(1200, 16, generator: g).mul_(decay).mul_(0.01), 2.0);
        var config = new AdapterConfig(new System.Text.Json.Nodes.JsonObject { ["r"] = 16, ["lora_alpha"] = 32 });
        return new MergeInput(new LoraAdapter($"t{i}", null, "PEFT", config, [module]));
    }).ToList();
}
