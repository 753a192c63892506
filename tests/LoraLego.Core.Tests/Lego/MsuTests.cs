using LoraLego.Core.Adapters;
using LoraLego.Core.Merging;
using System.Runtime.InteropServices;
using LoraLego.Core.Units;
using static LoraLego.Core.Tests.Lego.TestAdapters;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Lego;

public class MsuTests
{
    [Fact]
    public void Split_gives_one_unit_per_rank_with_the_weighted_scaling()
    {
        var a = Fixture("a");
        var units = MsuSplitter.Split(a, weight: 0.5).ToList();
        Assert.Equal(a.Modules.Sum(m => m.Rank), units.Count);
        var k = a.GetModule("model.layers.1.self_attn.k_proj")!;
        var third = units.Single(u => u.ModuleKey == k.Key && u.Index == 3);
        Assert.Equal(k.Scaling * 0.5, third.Scaling);
        Assert.Equal(k.A.ToArray().Skip(3 * 64).Take(64), third.A);
        Assert.Equal(k.B.ToArray().Where((_, i) => i % 8 == 3), third.B);
        Assert.Equal(8, third.SourceRank);
        Assert.False(third.SignFlipped);
    }

    [Fact]
    public void Split_keeps_only_modules_matching_the_wildcard()
    {
        var units = MsuSplitter.Split(Fixture("a"), moduleFilter: "*SELF_ATTN.Q_PROJ").ToList();
        Assert.Equal(["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"], units.Select(u => u.ModuleKey).Distinct());
        Assert.Equal(16, units.Count);
        Assert.True(new ModuleFilter("model.layers.?.mlp.*").Matches("model.layers.1.mlp.up_proj"));
        Assert.False(new ModuleFilter("model.layers.?.mlp").Matches("model.layers.1.mlp.up_proj"));
    }

    // The merge widens the stored bytes itself; they must be the rows libtorch's conversion gives,
    // from files (a, d) and from memory (an odd output width leaves a part of B's gather over).
    [Fact]
    public void Widened_rows_are_the_pools_rows_in_float32()
    {
        var inMemory = new MergeInput(Random("r", 5, TwoModules), 0.5);
        var pools = MsuSplitter.Pools([new MergeInput(Fixture("a")), new MergeInput(Fixture("d"), -2)], null, read: false)
            .Concat(MsuSplitter.Pools([inMemory], null, read: false))
            .Concat(MsuPool.FromUnits(MsuSplitter.Split(inMemory.Adapter))).ToList();
        Assert.Contains(pools, p => p.OutFeatures % 8 != 0);
        foreach (var pool in pools)
        {
            using var rows = pool.Rows();
            using var expected = rows.to_type(ScalarType.Float32);
            var widened = new float[pool.Count * (pool.OutFeatures + pool.InFeatures)];
            pool.WidenRows(widened);
            Assert.Equal(expected.bytes.ToArray(), MemoryMarshal.AsBytes(widened.AsSpan()).ToArray());
        }
    }

    [Theory]
    [InlineData("a")]
    [InlineData("d")]
    public void Join_of_split_reproduces_the_adapter(string name)
    {
        var adapter = Fixture(name);
        var joined = MsuJoiner.Join(MsuSplitter.Split(adapter), "joined");
        var expected = Fixtures.ReadDeltas(Fixtures.Adapter(name));
        Assert.Equal(adapter.BaseModel, joined.BaseModel);
        Assert.Equal(adapter.Config.Json["task_type"]!.ToString(), joined.Config.Json["task_type"]!.ToString());
        Assert.Equal(expected.Keys.Order(), joined.Modules.Select(m => m.Key).Order());
        foreach (var m in joined.Modules)
        {
            using var delta = m.Delta();
            Assert.True(MaxAbsDiff(delta, expected[m.Key]) < 1e-6, m.Key);
            Assert.Equal(adapter.GetModule(m.Key)!.A.ToArray(), m.A.ToArray());
        }
    }

    [Fact]
    public void Join_of_several_splits_is_the_weighted_sum()
    {
        MergeInput[] inputs = [new(Fixture("a")), new(Fixture("c"), 0.5), new(Fixture("d"), -2)];
        var joined = MsuJoiner.Join(inputs.SelectMany(i => MsuSplitter.Split(i.Adapter, i.Weight)));
        Assert.Equal(14, joined.ModuleCount);
        Assert.Equal("../../base", joined.BaseModel);
        Assert.Equal(8 + 4 + 16, joined.GetModule("model.layers.0.self_attn.v_proj")!.Rank);
        Assert.Equal(8 + 4, joined.GetModule("model.layers.0.self_attn.k_proj")!.Rank);
        foreach (var m in joined.Modules)
        {
            using var delta = m.Delta();
            using var expected = WeightedSum(inputs, m.Key);
            Assert.True(MaxAbsDiff(delta, expected) < 1e-6, m.Key);
        }
    }

    [Theory]
    [InlineData(0.7)]
    [InlineData(-0.7)]
    public void A_unit_and_its_negation_have_one_canonical_form(double scaling)
    {
        var config = AdapterConfig.Bare();
        var unit = new Msu("x", "m", 0, [0.1f, -0.5f, 0.2f], [0.3f, -0.05f], scaling, 1) { AdapterConfig = config };
        Assert.Same(config, unit.Negated().AdapterConfig);
        var canonical = SignCanonicalizer.Canonicalize(unit);
        var stored = unit.Negated();
        var fromNegated = SignCanonicalizer.Canonicalize(new Msu("x", "m", 0, stored.A, stored.B, scaling, 1));
        Assert.Equal(canonical.A, fromNegated.A);
        Assert.Equal(canonical.B, fromNegated.B);
        Assert.NotEqual(canonical.SignFlipped, fromNegated.SignFlipped);
        Assert.Null(MsuJoiner.Join([unit]).BaseModel);
        double[] folded = [.. canonical.FoldedB(), .. canonical.FoldedA()];
        Assert.True(folded.MaxBy(Math.Abs) > 0);
        Assert.Equal(unit.Norm, canonical.Norm, 12);
    }
}
