using LoraLego.Core.Clustering;
using LoraLego.Core.Units;
using static LoraLego.Core.Tests.Lego.TestAdapters;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Lego;

/// <summary>Pools clustered side by side as they arrive give each module's clustering alone, in arrival order.</summary>
public class RankClusterQueueTests
{
    private static readonly RankClusterOptions Options = new() { K = 5, KMeans = new KMeansOptions { Seed = 9 } };

    private static List<MsuPool> Pools() =>
        MsuPool.FromUnits(new[] { "a", "b", "c" }.SelectMany(name => MsuSplitter.Split(Fixture(name)))).ToList();

    [Fact]
    public void Queued_pools_come_back_in_arrival_order_as_each_clustered_alone()
    {
        var pools = Pools();
        var alone = pools.Select(pool => RankClusterer.Cluster(pool, Options, CPU)).ToList();
        var queued = new List<RankCluster>();
        using (var queue = new RankClusterQueue(Options, CPU))
        {
            foreach (var pool in pools)
            {
                if (queue.Full)
                    queued.Add(queue.TakeOldest());
                queue.Add(pool);
                Assert.Equal(pools[queued.Count].ModuleKey, queue.Oldest.ModuleKey);
            }
            while (queue.Count > 0)
                queued.Add(queue.TakeOldest());
        }
        Assert.Equal(pools.Select(p => p.ModuleKey), queued.Select(c => c.ModuleKey));
        for (int i = 0; i < pools.Count; i++)
        {
            Assert.Equal(alone[i].Assignments, queued[i].Assignments);
            Assert.Equal(alone[i].CentroidA.SelectMany(x => x), queued[i].CentroidA.SelectMany(x => x));
            Assert.Equal(alone[i].CentroidB.SelectMany(x => x), queued[i].CentroidB.SelectMany(x => x));
        }
    }

    [Fact]
    public void A_pools_error_is_thrown_when_it_is_taken_after_the_pools_before_it()
    {
        var pools = Pools();
        // Units whose factors fail to read when the clustering first asks for them, as a file changed since its import does.
        var unreadable = new MsuPool(pools[1].ModuleKey, pools[1].Units.Select(u => new Msu(u.Adapter, u.ModuleKey, u.Index, u.InFeatures, u.OutFeatures,
            new Lazy<(float[], float[])>(() => throw new LoraException(LoraErrorKind.InvalidData, "a.safetensors", "the file changed after it was imported", errorId: "FileChanged")),
            u.Scaling, u.SourceRank, u.FanInFanOut, signFlipped: false)).ToList());
        using var queue = new RankClusterQueue(Options, CPU);
        queue.Add(pools[0]);
        queue.Add(unreadable);
        queue.Add(pools[2]);
        Assert.Equal(pools[0].ModuleKey, queue.TakeOldest().ModuleKey);
        var e = Assert.Throws<LoraException>(queue.TakeOldest);
        Assert.Equal("FileChanged", e.ErrorId);
        Assert.Equal(pools[2].ModuleKey, queue.TakeOldest().ModuleKey);
        Assert.Equal(0, queue.Count);
    }
}
