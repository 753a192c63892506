using LoraLego.Core.Clustering;
using LoraLego.Core.Units;
using static LoraLego.Core.Tests.Lego.TestAdapters;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Lego;

/// <summary>What a clustered module's centroids are, checked against the arithmetic <see cref="RankClusterer"/> documents.</summary>
public class RankClustererTests
{
    // Widths below, at and past the 32 columns the CPU sums at once, with tails of every length class.
    public static TheoryData<int, int> Shapes => new() { { 7, 5 }, { 32, 64 }, { 70, 45 }, { 100, 131 } };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Each_centroid_is_its_members_folded_mean(int outFeatures, int inFeatures)
    {
        var specs = new[] { new ModuleSpec("model.layers.0.mlp.up_proj", inFeatures, outFeatures, 6, 9) };
        var units = Enumerable.Range(0, 4).SelectMany(a => MsuSplitter.Split(Random($"a{a}", (ulong)(11 + a), specs))).ToList();
        var pool = MsuPool.FromUnits(units).Single();

        var cluster = RankClusterer.Cluster(pool, new RankClusterOptions { K = 5 }, CPU);

        Assert.Equal(5, cluster.K);
        Assert.Contains(cluster.ClusterSizes, size => size > 2);
        for (int j = 0; j < cluster.K; j++)
        {
            var members = cluster.Units.Where((_, i) => cluster.Assignments[i] == j).ToList();
            Assert.Equal(Mean(members.Select(u => u.FoldedB()).ToList()), cluster.CentroidB[j]);
            Assert.Equal(Mean(members.Select(u => u.FoldedA()).ToList()), cluster.CentroidA[j]);
        }
    }

    // sum += (1 / m) * folded value, one fused multiply-add per member in order from +0, then rounded to float32 (the
    // rounding hides most float64 differences of order, so this checks members, factors and columns, not the order).
    private static float[] Mean(IReadOnlyList<double[]> folded)
    {
        double weight = 1.0 / folded.Count;
        return Enumerable.Range(0, folded[0].Length)
            .Select(c => (float)folded.Aggregate(0.0, (sum, row) => Math.FusedMultiplyAdd(weight, row[c], sum))).ToArray();
    }
}
