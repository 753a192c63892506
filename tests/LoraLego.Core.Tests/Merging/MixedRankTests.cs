using LoraLego.Core.Merging;
using Xunit.Abstractions;

namespace LoraLego.Core.Tests.Merging;

public class MixedRankTests(ITestOutputHelper output)
{
    // PEFT refused ties and magnitude_prune over a, b, c (ranks 8, 8, 4); their dense forms are the _svd fixtures.
    [Theory]
    [InlineData(MergeMethod.Ties, "ties_svd_abc")]
    [InlineData(MergeMethod.MagnitudePrune, "magprune_svd_abc")]
    public void Factorwise_trimming_over_mixed_ranks_runs_the_dense_form(MergeMethod method, string denseFixture)
    {
        var call = MergeFixtures.Get(denseFixture);
        var log = new List<string>();
        var merged = StandardMerge.Merge(call.Inputs(), method, call.Options(log.Add));
        double worst = MergeFixtures.WorstError(merged, MergeFixtures.IntendedDeltas(denseFixture));
        output.WriteLine($"{method} over a, b, c vs PEFT {denseFixture}: worst relative error {worst:E2}");
        Assert.True(worst < 1e-5, $"worst relative error {worst}");
        Assert.Equal(merged.ModuleCount, log.Count(l => l.Contains($"ran on the dense updates as '{call.Method.PeftName()}'")));
        Assert.All(merged.Modules, m => Assert.Equal(8, m.Rank));
    }

    [Fact]
    public void Linear_over_mixed_ranks_is_refused_before_any_work()
    {
        var inputs = new[] { new MergeInput(MergeFixtures.Adapter("a")), new MergeInput(MergeFixtures.Adapter("c")) };
        int progressed = 0;
        var e = Assert.Throws<LoraException>(() => StandardMerge.Merge(inputs, MergeMethod.Linear, new MergeOptions { Progress = _ => progressed++ }));
        Assert.Equal(LoraErrorKind.InvalidArgument, e.Kind);
        Assert.StartsWith("model.layers.", e.Target);
        Assert.Contains("a r8, c r4", e.Detail);
        Assert.Equal(0, progressed);
    }
}
