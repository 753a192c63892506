using LoraLego.Core.Merging;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Merging;

public class SvdPathTests(ITestOutputHelper output)
{
    private static MergeInput[] Inputs(params (string Name, double Weight)[] adapters) =>
        adapters.Select(a => new MergeInput(MergeFixtures.Adapter(a.Name), a.Weight)).ToArray();

    [Theory]
    [InlineData(null)]
    [InlineData(3)]
    [InlineData(12)]
    public void Factored_and_dense_paths_give_the_same_truncated_update(int? rank)
    {
        var inputs = Inputs(("a", 0.5), ("b", -0.7), ("c", 1.2), ("d", 0.9));
        var factored = StandardMerge.Merge(inputs, MergeMethod.Svd, new MergeOptions { Rank = rank });
        var dense = StandardMerge.Merge(inputs, MergeMethod.Svd, new MergeOptions { Rank = rank, DenseSvd = true });
        double worst = MergeFixtures.WorstError(factored, MergeFixtures.Deltas(dense));
        output.WriteLine($"rank {rank?.ToString() ?? "default"}: worst relative error {worst:E2}");
        Assert.True(worst < 1e-5, $"worst relative error {worst}");
        Assert.Equal(dense.Modules.Select(m => m.Rank), factored.Modules.Select(m => m.Rank));
    }

    [Fact]
    public void A_rank_beyond_the_stacked_rank_is_padded_to_what_the_dense_path_gives()
    {
        // k_proj maps 64 -> 32: the dense SVD has 32 columns; a and b stack to only 16.
        var inputs = Inputs(("a", 1.0), ("b", 1.0));
        var factored = StandardMerge.Merge(inputs, MergeMethod.Svd, new MergeOptions { Rank = 48 });
        var dense = StandardMerge.Merge(inputs, MergeMethod.Svd, new MergeOptions { Rank = 48, DenseSvd = true });
        var key = "model.layers.0.self_attn.k_proj";
        Assert.Equal(32, factored.GetModule(key)!.Rank);
        Assert.Equal(32, dense.GetModule(key)!.Rank);
        Assert.Equal(48, factored.GetModule("model.layers.0.self_attn.q_proj")!.Rank);
        Assert.True(MergeFixtures.WorstError(factored, MergeFixtures.Deltas(dense)) < 1e-5);
        Assert.True(MergeFixtures.WorstError(factored, MergeFixtures.Deltas(StandardMerge.Merge(inputs, MergeMethod.Cat))) < 1e-5);
    }

    [Fact]
    public void Clamp_limits_the_factors_symmetrically_and_leaves_the_bulk_alone()
    {
        var inputs = Inputs(("a", 1.0), ("b", 1.0), ("c", 1.0));
        var free = StandardMerge.Merge(inputs, MergeMethod.Svd);
        var clamped = StandardMerge.Merge(inputs, MergeMethod.Svd, new MergeOptions { Clamp = 0.9 });
        foreach (var module in clamped.Modules)
        {
            var original = free.GetModule(module.Key)!;
            using var before = cat([original.A.LoadFloat32().reshape(-1), original.B.LoadFloat32().reshape(-1)], 0);
            using var after = cat([module.A.LoadFloat32().reshape(-1), module.B.LoadFloat32().reshape(-1)], 0);
            double bound = after.abs().max().item<float>();
            using var expected = before.clamp(-bound, bound);
            Assert.True(after.allclose(expected, rtol: 0, atol: 1e-7), module.Key);
            double changed = before.ne(after).to(ScalarType.Float32).mean().item<float>();
            Assert.InRange(changed, 0.05, 0.5);
        }
    }
}
