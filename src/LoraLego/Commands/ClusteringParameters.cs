using LoraLego.Core.Clustering;
using LoraLego.Core.Compute;

namespace LoraLego.Commands;

/// <summary>The clustering options Invoke-RankCluster and Merge-Lora -Method Lego both take from their parameters.</summary>
internal static class ClusteringParameters
{
    public static RankClusterOptions Options(int? k, int restarts, int maxIterations, double tolerance, ulong seed,
        ClusteringSpace space, UnitNorm norm, ComputeDevice device) => new()
    {
        K = k,
        KMeans = new KMeansOptions { Restarts = restarts, MaxIterations = maxIterations, Tolerance = tolerance, Seed = seed },
        Space = space,
        Norm = norm,
        Device = device,
    };
}
