using LoraLego.Core.Adapters;
using LoraLego.Core.Merging;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Merging;

/// <summary>
/// The range finder's start for the trimming _svd forms: the untrimmed weighted sum's leading right singular
/// directions, found from the factors alone; and the merge where the adapters cancel in that sum.
/// </summary>
public class UntrimmedStartTests(ITestOutputHelper output)
{
    [Fact]
    public void The_start_spans_the_untrimmed_sums_leading_right_singular_directions()
    {
        var inputs = TrimmedSvdTests.DecayingAdapters();
        using var module = ModuleInputs.Load("model.layers.0.mlp.gate_proj", inputs, 1, CPU);
        using var workspace = new CombinationWorkspace();
        using var generator = new Generator(11, CPU);
        var (basis, count) = UntrimmedStart.Of(module, 24, generator, threads: 2, workspace)!.Value;
        using var sum = module.Members.Select(m => m.Delta().mul(m.Weight)).Aggregate((x, y) => x.add(y)).to_type(ScalarType.Float64);
        using var x = tensor(basis.AsSpan(0, 900 * count).ToArray(), [count, 900]).t();
        Assert.True(x.t().matmul(x).allclose(eye(count, dtype: ScalarType.Float64), atol: 1e-12), "orthonormal");
        // Projecting U onto the start loses about what its best rank-24 approximation loses (ten power steps do not
        // separate the nearly equal 24th and 25th singular values entirely); a Gaussian start of as many columns loses
        // most of U.
        double projected = sum.sub(sum.matmul(x).matmul(x.t())).norm().item<double>();
        var (_, s, _) = linalg.svd(sum, fullMatrices: false);
        double optimal = s[24..].norm().item<double>();
        output.WriteLine($"projection residual {projected:E4}, optimal rank-24 residual {optimal:E4}");
        Assert.Equal(24, count);
        Assert.InRange(projected / optimal, 1 - 1e-9, 1.005);
        using var gaussian = linalg.qr(randn(900, count, ScalarType.Float64, generator: new Generator(11, CPU))).Q;
        double random = sum.sub(sum.matmul(gaussian).matmul(gaussian.t())).norm().item<double>();
        output.WriteLine($"a Gaussian start's projection residual {random:E4}");
        Assert.True(random > 2 * optimal);
    }

    [Fact]
    public void Adapters_that_cancel_in_the_untrimmed_sum_give_no_start_and_a_close_rank_k_result_from_the_gaussian_sketch()
    {
        // One adapter added and subtracted: U is zero, while TIES' sign election still leaves a combination to cut.
        var adapter = TrimmedSvdTests.DecayingAdapters()[0].Adapter;
        var inputs = new List<MergeInput> { new(adapter, 1.0), new(adapter, -1.0), new(TrimmedSvdTests.DecayingAdapters()[1].Adapter, 1e-6) };
        using (var module = ModuleInputs.Load(adapter.Modules[0].Key, inputs, 0.5, CPU))
        using (var workspace = new CombinationWorkspace())
        using (var generator = new Generator(11, CPU))
            Assert.Null(UntrimmedStart.Of(module, 24, generator, threads: 1, workspace));
        var fast = StandardMerge.Merge(inputs, MergeMethod.TiesSvd, new MergeOptions { Density = 0.5, Rank = 16 });
        var dense = StandardMerge.Merge(inputs, MergeMethod.TiesSvd, new MergeOptions { Density = 0.5, Rank = 16, DenseSvd = true });
        var whole = StandardMerge.Merge(inputs, MergeMethod.TiesSvd, new MergeOptions { Density = 0.5, Rank = 900, DenseSvd = true });
        using var approx = fast.Modules[0].Delta();
        using var best = dense.Modules[0].Delta();
        using var combined = whole.Modules[0].Delta();
        Assert.True(combined.norm().item<float>() > 0, "the combination is not zero");
        double residualRatio = MergeFixtures.RelativeError(approx, combined) / MergeFixtures.RelativeError(best, combined);
        output.WriteLine($"residual over the optimal {residualRatio:F5}");
        Assert.InRange(residualRatio, 1.0 - 1e-6, 1.01);
    }
}
