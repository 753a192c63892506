using LoraLego.Core.Adapters;
using LoraLego.Core.Merging;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Merging;

/// <summary>
/// The fused SIMD passes of the trimming _svd methods on the CPU: their combination is TaskCombiner's on the dense
/// updates (PEFT's semantics), whatever the shape, ranks, densities, weights and thread count.
/// </summary>
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
        Assert.True(FusedCombination.Covers(module, combiner));
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

    private static MergeInput Input(int rows, int columns, int rank, int seed, double weight, double? density = null)
    {
        var g = manual_seed(seed);
        var module = LoraModule.FromFactors(Key, randn(rank, columns, generator: g).div_(Math.Sqrt(columns)), randn(rows, rank, generator: g).mul_(0.01), 2.0);
        return new MergeInput(new LoraAdapter($"t{seed}", null, "PEFT", Config(rank), [module]), weight, density);
    }

    private static AdapterConfig Config(int rank) => new(new System.Text.Json.Nodes.JsonObject { ["r"] = rank, ["lora_alpha"] = 2 * rank });
}
