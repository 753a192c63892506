using LoraLego.Core.Clustering;
using LoraLego.Core.Units;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Lego;

public class KMeansTests
{
    // Three blobs of 20 points around far-apart centres in 6 dimensions.
    private static Tensor Blobs(ulong seed)
    {
        var random = new SplitMix64(seed);
        var values = new List<double>();
        for (int blob = 0; blob < 3; blob++)
            for (int p = 0; p < 20; p++)
                for (int d = 0; d < 6; d++)
                    values.Add(10.0 * blob * (d % 3 == blob ? 1 : 0) + random.NextDouble());
        return tensor(values.ToArray(), [60, 6]);
    }

    [Fact]
    public void The_same_seed_gives_the_same_result()
    {
        using var points = Blobs(1);
        var options = new KMeansOptions { Seed = 42, Restarts = 3 };
        var first = KMeans.Fit(points, 5, options);
        var second = KMeans.Fit(points, 5, options);
        Assert.Equal(first.Assignments, second.Assignments);
        Assert.Equal(first.Centroids, second.Centroids);
        Assert.Equal(first.Inertia, second.Inertia);
        Assert.Equal(first.Restart, second.Restart);
    }

    [Fact]
    public void Inertia_never_increases_over_iterations()
    {
        var random = new SplitMix64(7);
        using var points = tensor(Enumerable.Range(0, 400 * 5).Select(_ => random.NextDouble()).ToArray(), [400, 5]);
        for (ulong seed = 0; seed < 5; seed++)
        {
            var result = KMeans.Fit(points, 12, new KMeansOptions { Seed = seed, Restarts = 1, Tolerance = 0 });
            Assert.True(result.InertiaHistory.Length > 3, "expected several iterations");
            for (int i = 1; i < result.InertiaHistory.Length; i++)
                Assert.True(result.InertiaHistory[i] <= result.InertiaHistory[i - 1] * (1 + 1e-12), $"seed {seed}, step {i}: {result.InertiaHistory[i - 1]} -> {result.InertiaHistory[i]}");
            Assert.Equal(result.Inertia, result.InertiaHistory[^1]);
        }
    }

    [Fact]
    public void Separated_blobs_are_found()
    {
        using var points = Blobs(3);
        var result = KMeans.Fit(points, 3, new KMeansOptions { Seed = 1 });
        for (int blob = 0; blob < 3; blob++)
            Assert.Single(result.Assignments.Skip(20 * blob).Take(20).Distinct());
        Assert.Equal(3, result.Assignments.Distinct().Count());
    }

    [Fact]
    public void A_module_with_fewer_units_than_k_keeps_them_all_and_says_so()
    {
        var units = MsuSplitter.Split(TestAdapters.Random("x", 1, TestAdapters.TwoModules)).Where(u => u.ModuleKey.EndsWith("q_proj")).ToList();
        var cluster = RankClusterer.Cluster(new MsuPool(units[0].ModuleKey, units), new RankClusterOptions { K = 10 });
        Assert.Equal(10, cluster.RequestedK);
        Assert.Equal(4, cluster.K);
        Assert.True(cluster.KeptAllUnits);
        Assert.Contains("fewer than k = 10", cluster.Message);
        Assert.All(cluster.ClusterSizes, size => Assert.Equal(1, size));
    }

    [Fact]
    public void Clusters_left_empty_by_duplicate_units_are_dropped_and_reported()
    {
        var unit = new Msu("x", "m", 0, [1f, 0f], [0f, 1f, 0f], 1.0, 2);
        var other = new Msu("x", "m", 1, [0f, 1f], [1f, 0f, 0f], 1.0, 2);
        var pool = new MsuPool("m", [unit, other, unit, other, unit]);
        var cluster = RankClusterer.Cluster(pool, new RankClusterOptions { K = 3 });
        Assert.Equal(2, cluster.K);
        Assert.False(cluster.KeptAllUnits);
        Assert.Contains("empty", cluster.Message);
        Assert.Equal(new[] { 2, 3 }, cluster.ClusterSizes.Order());
        Assert.Equal(0, cluster.Inertia, 12);
    }
}
