using System.Text.Json.Nodes;
using LoraLego.Core.Adapters;
using LoraLego.Core.Clustering;
using LoraLego.Core.Merging;
using LoraLego.Core.Units;
using static LoraLego.Core.Tests.Lego.TestAdapters;

namespace LoraLego.Core.Tests.Lego;

public class LegoMergeTests
{
    private static readonly LegoOptions NoReweighting = new() { ParameterReweight = false, OutputReweight = false };

    private static readonly LegoOptions SumWithoutReweighting = NoReweighting with { Target = LegoTarget.Sum };

    private static LegoOptions WithK(LegoOptions options, int k) => options with { Clustering = options.Clustering with { K = k } };

    private static MergeInput[] RandomPair(ulong seed) =>
    [
        new(Random("x", seed, TestAdapters.TwoModules)),
        new(Random("y", seed + 1, TestAdapters.TwoModules), 0.7),
    ];

    [Fact]
    public void Every_unit_its_own_cluster_without_reweighting_reproduces_peft_cat()
    {
        MergeInput[] inputs = [new(Fixture("a"), 0.5), new(Fixture("b"), 0.3), new(Fixture("c"), 0.2)];
        var merged = LegoMerge.Merge(inputs, WithK(SumWithoutReweighting, 20));
        var expected = Fixtures.ReadDeltas(Fixtures.Merge("cat_abc"));
        Assert.Equal(expected.Keys.Order(), merged.Modules.Select(m => m.Key).Order());
        foreach (var m in merged.Modules)
        {
            Assert.Equal(20, m.Rank);
            using var delta = m.Delta();
            Assert.True(MaxAbsDiff(delta, expected[m.Key]) < 1e-5, m.Key);
        }
    }

    [Fact]
    public void The_default_merge_is_the_mean_of_the_inputs_peft_cat_with_weights_over_n()
    {
        // Defaults: every unit kept, mean target, no output reweighting; parameter reweighting is on
        // but leaves singleton clusters as they are. So the merge is PEFT's cat with weights w_i / 3.
        MergeInput[] inputs = [new(Fixture("a"), 0.5), new(Fixture("b"), 0.3), new(Fixture("c"), 0.2)];
        var merged = LegoMerge.Merge(inputs);
        var expected = Fixtures.ReadDeltas(Fixtures.Merge("cat_abc"));
        foreach (var m in merged.Modules)
        {
            Assert.Equal(20, m.Rank);
            using var delta = m.Delta();
            using var mean = expected[m.Key] / 3;
            Assert.True(MaxAbsDiff(delta, mean) < 1e-5, m.Key);
        }
    }

    [Fact]
    public void Mixed_ranks_rslora_and_module_sets_merge_to_the_weighted_sum_when_every_unit_is_kept()
    {
        MergeInput[] inputs = [new(Fixture("a"), 0.5), new(Fixture("c"), 1.5), new(Fixture("d"), -0.4)];
        var log = new List<string>();
        var merged = LegoMerge.Merge(inputs, WithK(SumWithoutReweighting, 1000), verbose: log.Add);
        Assert.Equal(14, merged.ModuleCount);
        Assert.Equal(8 + 4 + 16, merged.GetModule("model.layers.1.self_attn.q_proj")!.Rank);
        Assert.Equal(8 + 4, merged.GetModule("model.layers.1.mlp.up_proj")!.Rank);
        Assert.Contains(log, line => line.Contains("fewer than k = 1000"));
        foreach (var m in merged.Modules)
        {
            using var delta = m.Delta();
            using var expected = WeightedSum(inputs, m.Key);
            Assert.True(MaxAbsDiff(delta, expected) < 1e-5, m.Key);
        }
    }

    [Fact]
    public void Rank_and_alpha_patterns_are_honoured_and_the_default_k_keeps_every_unit()
    {
        var x = Random("x", 5, [new("m.q_proj", 12, 10, 6, 3), new("m.v_proj", 12, 10, 2, 16)], useRsLora: true);
        var y = Random("y", 6, [new("m.q_proj", 12, 10, 4, 8), new("m.k_proj", 12, 6, 3, 5)]);
        Assert.NotEmpty(x.Config.RankPattern);
        MergeInput[] inputs = [new(x), new(y, 2)];
        var exact = LegoMerge.Merge(inputs, WithK(SumWithoutReweighting, 1000));
        foreach (var m in exact.Modules)
        {
            using var delta = m.Delta();
            using var expected = WeightedSum(inputs, m.Key);
            Assert.True(MaxAbsDiff(delta, expected) < 1e-6, m.Key);
        }
        var merged = LegoMerge.Merge(inputs);
        Assert.Equal(6 + 4, merged.GetModule("m.q_proj")!.Rank);
        Assert.Equal(2, merged.GetModule("m.v_proj")!.Rank);
        Assert.Equal(3, merged.GetModule("m.k_proj")!.Rank);
        foreach (var m in merged.Modules)
        {
            using var delta = m.Delta();
            using var expected = WeightedSum(inputs, m.Key) / 2;
            Assert.True(MaxAbsDiff(delta, expected) < 1e-6, m.Key);
        }
        var compressed = LegoMerge.Merge(inputs, WithK(new LegoOptions(), 4));
        Assert.Equal(4, compressed.GetModule("m.q_proj")!.Rank);
        Assert.True(AdapterConfigDescription.Describes(merged.Config, merged.Modules));
        Assert.True(AdapterConfigDescription.Describes(compressed.Config, compressed.Modules));
    }

    [Fact]
    public void Permuting_the_ranks_of_an_input_does_not_change_the_result()
    {
        ModuleSpec[] specs = [new("m.q_proj", 16, 12, 8, 8), new("m.o_proj", 12, 16, 8, 8)];
        MergeInput[] inputs = [new(Random("x", 40, specs)), new(Random("y", 41, specs), 0.7)];
        // One k-means++ start, so the result hangs on which units are drawn first: the order the
        // units arrive in would show through if the pool were not put in canonical order.
        LegoOptions Options(ulong seed) => new() { Clustering = new RankClusterOptions { K = 5, KMeans = new KMeansOptions { Restarts = 1, Seed = seed } } };
        var expected = LegoMerge.Merge(inputs, Options(3));
        var otherSeeds = Enumerable.Range(4, 6).Select(seed => LegoMerge.Merge(inputs, Options((ulong)seed)));
        Assert.Contains(otherSeeds, other => !other.Modules[0].A.ToArray().SequenceEqual(expected.Modules[0].A.ToArray()));
        var permuted = Rearranged(inputs[0].Adapter, "m.q_proj", [5, 2, 7, 0, 3, 1, 6, 4], [1, 1, 1, 1, 1, 1, 1, 1]);
        AssertIdentical(expected, LegoMerge.Merge([new(permuted), inputs[1]], Options(3)));
    }

    [Theory]
    [InlineData(ClusteringSpace.Normalized)]
    [InlineData(ClusteringSpace.Raw)]
    public void Negating_a_unit_does_not_change_the_result(ClusteringSpace space)
    {
        var inputs = RandomPair(20);
        var negated = Rearranged(inputs[1].Adapter, TestAdapters.TwoModules[1].Key, [0, 1, 2, 3], [1, -1, 1, -1]);
        var options = new LegoOptions { Clustering = new RankClusterOptions { K = 3, Space = space } };
        var expected = LegoMerge.Merge(inputs, options);
        var actual = LegoMerge.Merge([inputs[0], inputs[1] with { Adapter = negated }], options);
        AssertIdentical(expected, actual);
    }

    [Theory]
    [InlineData(LegoTarget.Mean, 1.0)]
    [InlineData(LegoTarget.Sum, 3.0)]
    public void An_adapter_merged_with_itself_at_its_rank_comes_back(LegoTarget target, double times)
    {
        var a = Fixture("a");
        var merged = LegoMerge.Merge([new(a), new(a), new(a)], WithK(new LegoOptions { Target = target }, 8));
        foreach (var m in merged.Modules)
        {
            Assert.Equal(8, m.Rank);
            Assert.Equal(1.0, m.Scaling, 12);
            using var delta = m.Delta();
            using var expected = a.GetModule(m.Key)!.Delta() * times;
            Assert.True(MaxAbsDiff(delta, expected) < 1e-5 * times, m.Key);
        }
    }

    [Fact]
    public void The_same_seed_gives_an_identical_merge()
    {
        MergeInput[] inputs = [new(Fixture("a")), new(Fixture("b")), new(Fixture("c"))];
        var options = new LegoOptions { Clustering = new RankClusterOptions { KMeans = new KMeansOptions { Seed = 1234 } } };
        AssertIdentical(LegoMerge.Merge(inputs, options), LegoMerge.Merge(inputs, options));
    }

    [Theory]
    [InlineData(UnitNorm.LInfinity)]
    [InlineData(UnitNorm.L2)]
    public void Parameter_reweighting_gives_each_merged_unit_its_members_mean_norm(UnitNorm norm)
    {
        var clustering = new RankClusterOptions { K = 3, Norm = norm };
        var pool = MsuSplitter.Pools(RandomPair(30)).First();
        var cluster = RankClusterer.Cluster(pool, clustering);
        var module = LegoMerge.BuildModule(cluster, new LegoOptions { Clustering = clustering });
        Assert.Equal(1.0, module.Scaling);
        var units = MsuSplitter.SplitModule(LoraAdapter.Create("merged", AdapterConfig.Bare(), [module]), module);
        for (int j = 0; j < cluster.K; j++)
        {
            // The mean target then scales both parts by sqrt(m_j / N), N = 2 adapters.
            double[] vector = [.. units[j].B.Select(v => (double)v), .. units[j].A.Select(v => (double)v)];
            Assert.Equal(cluster.MeanMemberNorms[j] * Math.Sqrt(cluster.ClusterSizes[j] / 2.0), RankClusterer.NormOf(vector, norm), 5);
        }
    }

    [Fact]
    public void Output_reweighting_scales_by_the_root_of_input_rank_over_merged_rank()
    {
        var merged = LegoMerge.Merge([new(Fixture("a")), new(Fixture("c"))], WithK(new LegoOptions { OutputReweight = true }, 4));
        Assert.All(merged.Modules, m => Assert.Equal(Math.Sqrt((8 + 4) / 2.0 / 4), m.Scaling, 6));
    }

    [Fact]
    public void The_provenance_records_the_choices_and_the_config_describes_the_modules()
    {
        var merged = LegoMerge.Merge([new(Fixture("a"), 0.6), new(Fixture("d"), 0.4)], name: "ad");
        Assert.Null(merged.Config.Json[Provenance.LegacyConfigKey]);
        var record = merged.Provenance!;
        Assert.Equal("mean", (string)record["target"]!);
        Assert.Equal("linf", (string)record["norm"]!);
        Assert.Equal("normalized", (string)record["clustering_space"]!);
        Assert.True((bool)record["parameter_reweight"]!);
        Assert.False((bool)record["output_reweight"]!);
        Assert.Equal("every unit", (string)record["k"]!);
        Assert.Equal(0.4, (double)record["inputs"]![1]!["weight"]!);
        Assert.Equal("../../base", merged.BaseModel);
        Assert.True(AdapterConfigDescription.Describes(merged.Config, merged.Modules));
        var reparsed = AdapterConfig.Parse(merged.Config.Json.ToJsonString(), "ad");
        Assert.True(AdapterConfigDescription.Describes(reparsed, merged.Modules));
    }

    [Fact]
    public void Merging_clustered_modules_equals_merging_the_adapters()
    {
        MergeInput[] inputs = [new(Fixture("a"), 0.5), new(Fixture("c")), new(Fixture("d"))];
        var options = WithK(new LegoOptions(), 6);
        var units = inputs.SelectMany(i => MsuSplitter.Split(i.Adapter, i.Weight));
        var clusters = RankClusterer.Cluster(units, options.Clustering);
        var fromClusters = LegoMerge.Merge(clusters, template: null, options);
        var direct = LegoMerge.Merge(inputs, options);
        // The units carry their adapter's config, so the step-by-step form keeps the first input's
        // base model, task type and other fields, as the one-call form does.
        Assert.Equal("../../base", fromClusters.BaseModel);
        Assert.Equal(direct.Config.Json.ToJsonString(), fromClusters.Config.Json.ToJsonString());
        Assert.Equal(direct.Modules.Select(m => m.Key).Order(), fromClusters.Modules.Select(m => m.Key).Order());
        foreach (var m in direct.Modules)
        {
            var other = fromClusters.GetModule(m.Key)!;
            Assert.Equal(m.Scaling, other.Scaling);
            Assert.Equal(m.A.ToArray(), other.A.ToArray());
            Assert.Equal(m.B.ToArray(), other.B.ToArray());
        }
    }

    [Fact]
    public void Disagreeing_shapes_name_the_module()
    {
        var x = Random("x", 1, [new("m.q_proj", 12, 10, 2, 2)]);
        var y = Random("y", 2, [new("m.q_proj", 12, 11, 2, 2)]);
        var e = Assert.Throws<LoraException>(() => LegoMerge.Merge([new(x), new(y)]));
        Assert.Equal(LoraErrorKind.ShapeMismatch, e.Kind);
        Assert.Equal("m.q_proj", e.Target);
    }

    [Fact]
    public void Progress_is_reported_per_module_and_cancellation_stops_between_modules()
    {
        MergeInput[] inputs = [new(Fixture("a")), new(Fixture("b"))];
        var seen = new List<(int Index, int Count, string Key)>();
        using var cancel = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() => LegoMerge.Merge(inputs, progress: p =>
        {
            seen.Add((p.ModuleIndex, p.ModuleCount, p.ModuleKey));
            if (p.ModuleIndex == 2)
                cancel.Cancel();
        }, cancellationToken: cancel.Token));
        Assert.Equal([0, 1, 2], seen.Select(s => s.Index));
        Assert.All(seen, s => Assert.Equal(14, s.Count));
        var filtered = new List<string>();
        LegoMerge.Merge(inputs, new LegoOptions { ModuleFilter = "*.mlp.*" }, progress: p => filtered.Add($"{p.ModuleCount}:{p.ModuleKey}"));
        Assert.Equal(6, filtered.Count);
        Assert.All(filtered, f => Assert.StartsWith("6:", f));
    }
}
