using LoraLego.Core.Compute;

namespace LoraLego.Core.Clustering;

/// <summary>How the units of a module are clustered (LoRA-LEGO step 2).</summary>
public sealed record RankClusterOptions
{
    /// <summary>Clusters per module, the merged rank; null: one per unit (nothing merged away; give K to compress).</summary>
    public int? K { get; init; }

    public KMeansOptions KMeans { get; init; } = new();

    public ClusteringSpace Space { get; init; } = ClusteringSpace.Normalized;

    /// <summary>The norm recorded for each member, which parameter reweighting restores.</summary>
    public UnitNorm Norm { get; init; } = UnitNorm.LInfinity;

    /// <summary>Where k-means runs; CUDA falls back to the CPU with a message.</summary>
    public ComputeDevice Device { get; init; } = ComputeDevice.Cpu;

    public void Validate()
    {
        if (K is < 1)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"K must be at least 1, not {K}");
        KMeans.Validate();
    }
}
