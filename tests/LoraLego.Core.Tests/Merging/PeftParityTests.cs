using LoraLego.Core.Merging;
using Xunit.Abstractions;

namespace LoraLego.Core.Tests.Merging;

public class PeftParityTests(ITestOutputHelper output)
{
    [Fact]
    public void Every_fixture_merge_is_covered()
    {
        var folders = Directory.GetDirectories(Path.Combine(Fixtures.PeftTinyLlama, "merges")).Select(Path.GetFileName).Order();
        Assert.Equal(folders, MergeFixtures.All.Select(m => m.Name).Order());
    }

    [Theory]
    [MemberData(nameof(MergeFixtures.Names), MemberType = typeof(MergeFixtures))]
    public void Effective_deltas_match_peft(string name)
    {
        var call = MergeFixtures.Get(name);
        var merged = StandardMerge.Merge(call.Inputs(), call.Method, call.Options());
        double worst = MergeFixtures.WorstError(merged, MergeFixtures.IntendedDeltas(name));
        output.WriteLine($"{name}: worst relative Frobenius error {worst:E2}");
        Assert.True(worst < 1e-5, $"{name}: worst relative error {worst}");
    }

    [Theory]
    [InlineData("svd_abc")]
    [InlineData("svd_ad")]
    [InlineData("svd_da")]
    public void The_dense_svd_path_matches_peft_too(string name)
    {
        var call = MergeFixtures.Get(name);
        var options = call.Options();
        var merged = StandardMerge.Merge(call.Inputs(), call.Method, new MergeOptions { Rank = options.Rank, DenseSvd = true });
        double worst = MergeFixtures.WorstError(merged, MergeFixtures.IntendedDeltas(name));
        output.WriteLine($"{name} (dense path): worst relative Frobenius error {worst:E2}");
        Assert.True(worst < 1e-5, $"{name}: worst relative error {worst}");
    }

    [Theory]
    [InlineData("cat_da")]
    [InlineData("svd_da")]
    public void An_rslora_first_input_does_not_overscale_the_result(string name)
    {
        var call = MergeFixtures.Get(name);
        var merged = StandardMerge.Merge(call.Inputs(), call.Method, call.Options());
        Assert.False(merged.UseRsLora);
        Assert.All(merged.Modules, m => Assert.Equal(1.0, m.Scaling, 12));
    }
}
