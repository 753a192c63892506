using LoraLego.Core.Compute;
using LoraLego.Core.Units;
using static TorchSharp.torch;

namespace LoraLego.Core.Clustering;

/// <summary>
/// Modules clustered side by side as their pools arrive (one per libtorch thread, at least two, each with its own rows
/// buffer and its Gram products on one thread) and taken back in arrival order on the caller's thread: for a caller
/// that receives units as a stream, as Invoke-RankCluster does from a PowerShell pipeline, and must write each result
/// from its own thread. The results are those of <see cref="RankClusterer.Cluster(MsuPool, RankClusterOptions?, Device?, Action{string}?)"/>.
/// </summary>
public sealed class RankClusterQueue : IDisposable
{
    private readonly OrderedWork<MsuPool, ClusterWorkspace, RankCluster> _work;

    /// <param name="options">k, k-means settings, space and norm.</param>
    /// <param name="device">A resolved torch device (<see cref="Compute.DeviceSelector.Resolve"/>).</param>
    public RankClusterQueue(RankClusterOptions options, Device device)
    {
        options.Validate();
        _work = new(Degree, NewWorkspace, Clustering(options, device));
    }

    /// <summary>The pools clustered side by side, in their order, as the result is enumerated.</summary>
    internal static IEnumerable<RankCluster> InOrder(IEnumerable<MsuPool> pools, RankClusterOptions options, Device device) =>
        OrderedWork.Map(pools, Degree, NewWorkspace, Clustering(options, device));

    private static int Degree => Math.Max(2, get_num_threads());

    private static ClusterWorkspace NewWorkspace() => new(gramThreads: 1);

    private static Func<MsuPool, ClusterWorkspace, RankCluster> Clustering(RankClusterOptions options, Device device) =>
        (pool, workspace) => RankClusterer.Cluster(pool, options, device, null, workspace);

    /// <summary>Pools added and not yet taken.</summary>
    public int Count => _work.Count;

    /// <summary>Whether the oldest must be taken before another pool is added.</summary>
    public bool Full => _work.Full;

    /// <summary>The oldest pool not yet taken.</summary>
    public MsuPool Oldest => _work.Oldest;

    /// <summary>Whether the oldest pool is clustered (taking it then does not wait).</summary>
    public bool OldestDone => _work.OldestDone;

    /// <summary>Starts clustering <paramref name="pool"/>; where <see cref="Full"/>, take the oldest first.</summary>
    public void Add(MsuPool pool) => _work.Start(pool);

    /// <summary>The oldest pool's clustering, waiting for it; its error (a bad file, a shape mismatch) is thrown here.</summary>
    public RankCluster TakeOldest() => _work.TakeOldest();

    /// <summary>Waits for the clusterings not taken, dropping their results and errors.</summary>
    public void Dispose() => _work.Dispose();
}
