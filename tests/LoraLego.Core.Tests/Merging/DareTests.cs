using LoraLego.Core.Merging;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Merging;

public class DareTests
{
    // b at weight 0 contributes nothing, so the merged A is exactly sqrt(scaling_a) * drop(A_a).
    private static readonly MergeInput[] OnlyA = [new(MergeFixtures.Adapter("a"), 1.0), new(MergeFixtures.Adapter("b"), 0.0)];

    [Fact]
    public void Dare_keeps_about_density_of_the_entries_and_rescales_them_by_its_inverse()
    {
        const double density = 0.3;
        var merged = StandardMerge.Merge(OnlyA, MergeMethod.DareLinear, new MergeOptions { Density = density, Seed = 7 });
        var a = MergeFixtures.Adapter("a");
        long kept = 0, total = 0;
        foreach (var module in merged.Modules)
        {
            var source = a.GetModule(module.Key)!;
            using var original = source.A.LoadFloat32().mul(Math.Sqrt(source.Scaling) / density);
            using var dropped = module.A.LoadFloat32();
            using var survivors = dropped.ne(0);
            kept += survivors.sum().item<long>();
            total += survivors.numel();
            Assert.True(dropped.masked_select(survivors).allclose(original.masked_select(survivors), rtol: 1e-5, atol: 0), module.Key);
        }
        Assert.InRange((double)kept / total, density - 0.02, density + 0.02);
    }

    [Theory]
    [InlineData(MergeMethod.DareLinear)]
    [InlineData(MergeMethod.DareTies)]
    [InlineData(MergeMethod.DareLinearSvd)]
    [InlineData(MergeMethod.DareTiesSvd)]
    public void The_same_seed_gives_the_same_merge_and_another_seed_another(MergeMethod method)
    {
        var inputs = new[] { new MergeInput(MergeFixtures.Adapter("a"), 0.6), new MergeInput(MergeFixtures.Adapter("b"), 0.4) };
        LoraLego.Core.Adapters.LoraAdapter Run(long seed) => StandardMerge.Merge(inputs, method, new MergeOptions { Density = 0.5, Seed = seed });
        var first = MergeFixtures.Deltas(Run(1));
        Assert.Equal(0, MergeFixtures.WorstError(Run(1), first));
        Assert.True(MergeFixtures.WorstError(Run(2), first) > 0.1);
    }

    [Fact]
    public void An_unseeded_merge_reports_the_seed_that_reproduces_it()
    {
        var log = new List<string>();
        var merged = StandardMerge.Merge(OnlyA, MergeMethod.DareTies, new MergeOptions { Density = 0.5, Verbose = log.Add });
        string line = Assert.Single(log, l => l.StartsWith("DARE seed "));
        long seed = long.Parse(line.Split(' ')[2]);
        var again = StandardMerge.Merge(OnlyA, MergeMethod.DareTies, new MergeOptions { Density = 0.5, Seed = seed });
        Assert.Equal(0, MergeFixtures.WorstError(again, MergeFixtures.Deltas(merged)));
    }

    [Fact]
    public void Density_one_drops_nothing()
    {
        var linear = StandardMerge.Merge(OnlyA, MergeMethod.Linear);
        var dare = StandardMerge.Merge(OnlyA, MergeMethod.DareLinear, new MergeOptions { Density = 1, Seed = 3 });
        Assert.Equal(0, MergeFixtures.WorstError(dare, MergeFixtures.Deltas(linear)));
    }
}
