using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using LoraLego.Core.Surgery;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Surgery;

/// <summary>Resizing against the Eckart-Young optimum, computed by a dense float64 SVD of each fixture update.</summary>
public class LoraResizerTests
{
    public static TheoryData<string> Adapters => new() { "a", "b", "c", "d" };

    private static LoraAdapter Read(string name) => PeftAdapterReader.Read(Fixtures.Adapter(name));

    private static double RelativeDifference(Tensor x, Tensor y) =>
        x.to_type(ScalarType.Float64).sub(y.to_type(ScalarType.Float64)).norm().item<double>() / y.to_type(ScalarType.Float64).norm().item<double>();

    [Theory]
    [MemberData(nameof(Adapters))]
    public void Resize_to_its_own_rank_returns_the_same_update(string name)
    {
        var adapter = Read(name);
        var resized = LoraResizer.Resize(adapter, RankRule.Fixed(adapter.Rank));
        foreach (var module in adapter.Modules)
        {
            using var scope = NewDisposeScope();
            var after = resized.GetModule(module.Key)!;
            Assert.Equal(module.Rank, after.Rank);
            Assert.True(RelativeDifference(after.Delta(), module.Delta()) < 1e-6, module.Key);
        }
    }

    [Theory]
    [MemberData(nameof(Adapters))]
    public void Resize_to_a_lower_rank_loses_exactly_the_tail_singular_values(string name)
    {
        var adapter = Read(name);
        int rank = adapter.Rank / 2;
        var resized = LoraResizer.Resize(adapter, RankRule.Fixed(rank));
        foreach (var module in adapter.Modules)
        {
            using var scope = NewDisposeScope();
            var dense = module.Delta().to_type(ScalarType.Float64);
            var s = linalg.svdvals(dense);
            double optimal = s[rank..].square().sum().sqrt().item<double>();
            double error = resized.GetModule(module.Key)!.Delta().to_type(ScalarType.Float64).sub(dense).norm().item<double>();
            double norm = dense.norm().item<double>();
            Assert.True(Math.Abs(error - optimal) <= 1e-5 * norm, $"{module.Key}: error {error}, optimum {optimal}, norm {norm}");
            Assert.True(optimal > 1e-3 * norm, "the tail must be visible, or the check proves nothing");
        }
    }

    [Fact]
    public void Energy_rule_keeps_the_fewest_ranks_that_hold_the_fraction()
    {
        var adapter = Read("a");
        var changes = new List<ModuleRankChange>();
        var resized = LoraResizer.Resize(adapter, RankRule.Energy(0.8), report: changes.Add);
        Assert.Equal(adapter.ModuleCount, changes.Count);
        foreach (var change in changes)
        {
            using var scope = NewDisposeScope();
            var s = linalg.svdvals(adapter.GetModule(change.Module)!.Delta().to_type(ScalarType.Float64)).data<double>().ToArray();
            double total = s.Sum(v => v * v);
            double Kept(int k) => s.Take(k).Sum(v => v * v) / total;
            Assert.True(Kept(change.NewRank) >= 0.8 - 1e-9);
            Assert.True(Kept(change.NewRank - 1) < 0.8);
            Assert.Equal(Kept(change.NewRank), change.EnergyKept, 6);
            Assert.Equal(change.NewRank, resized.GetModule(change.Module)!.Rank);
        }
        Assert.Contains(changes, c => c.NewRank < adapter.Rank);
    }

    [Fact]
    public void Relative_threshold_keeps_singular_values_above_the_fraction_of_the_largest()
    {
        var adapter = Read("b");
        var changes = new List<ModuleRankChange>();
        LoraResizer.Resize(adapter, RankRule.RelativeThreshold(0.5), report: changes.Add);
        foreach (var change in changes)
        {
            using var scope = NewDisposeScope();
            var s = linalg.svdvals(adapter.GetModule(change.Module)!.Delta().to_type(ScalarType.Float64)).data<double>().ToArray();
            Assert.Equal(s.Count(v => v >= 0.5 * s[0]), change.NewRank);
        }
    }

    [Fact]
    public void Mixed_ranks_are_written_as_patterns_that_give_every_module_its_update_back()
    {
        var adapter = Read("a");
        var resized = LoraResizer.Resize(adapter, RankRule.Energy(0.7));
        Assert.True(resized.Modules.Select(m => m.Rank).Distinct().Count() > 1, "the rule should give different ranks");
        string folder = Path.Combine(Path.GetTempPath(), "loralego-resize-" + Guid.NewGuid().ToString("N"));
        try
        {
            PeftAdapterWriter.Write(resized, folder);
            var reread = PeftAdapterReader.Read(folder);
            Assert.NotEmpty(reread.Config.RankPattern);
            foreach (var module in resized.Modules)
            {
                using var scope = NewDisposeScope();
                var back = reread.GetModule(module.Key)!;
                Assert.Equal(module.Rank, back.Rank);
                Assert.Equal(1.0, back.Scaling, 12);
                Assert.True(RelativeDifference(back.Delta(), module.Delta()) < 1e-7);
            }
            Assert.Equal("resize", reread.Provenance!["operation"]!.GetValue<string>());
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
