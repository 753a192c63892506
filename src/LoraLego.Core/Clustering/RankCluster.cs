using LoraLego.Core.Units;

namespace LoraLego.Core.Clustering;

/// <summary>
/// The clustering of one module's units (LoRA-LEGO step 2): which unit went where, the centroids,
/// and everything the merge needs to rebuild the module without the units' adapters.
/// </summary>
/// <remarks>
/// Centroids are means of the members' folded, sign-canonical vectors (<see cref="Msu.FoldedB"/>,
/// <see cref="Msu.FoldedA"/>), before any reweighting: centroid j alone has the update
/// CentroidB[j] CentroidA[j]^T.
/// </remarks>
public sealed class RankCluster
{
    internal RankCluster(string moduleKey, int requestedK, IReadOnlyList<Msu> units, int[] assignments,
        float[][] centroidA, float[][] centroidB, double[] memberNorms, double inertia, int iterations,
        double[] inertiaHistory, RankClusterOptions options, double meanInputRank, string? message)
    {
        ModuleKey = moduleKey;
        RequestedK = requestedK;
        Units = units;
        Assignments = assignments;
        CentroidA = centroidA;
        CentroidB = centroidB;
        MemberNorms = memberNorms;
        Inertia = inertia;
        Iterations = iterations;
        InertiaHistory = inertiaHistory;
        Options = options;
        MeanInputRank = meanInputRank;
        Message = message;
        ClusterSizes = new int[centroidA.Length];
        foreach (int j in assignments)
            ClusterSizes[j]++;
        MeanMemberNorms = Enumerable.Range(0, K)
            .Select(j => Enumerable.Range(0, units.Count).Where(i => assignments[i] == j).Average(i => memberNorms[i]))
            .ToArray();
    }

    public string ModuleKey { get; }

    /// <summary>The k asked for (the option, or the largest input rank).</summary>
    public int RequestedK { get; }

    /// <summary>The clusters made, the merged rank: RequestedK, or fewer when there were fewer distinct units.</summary>
    public int K => CentroidA.Length;

    /// <summary>True when the module had fewer units than the k asked for, so every unit was kept as its own cluster.</summary>
    public bool KeptAllUnits => Units.Count < RequestedK;

    /// <summary>Why K differs from RequestedK; null when it does not.</summary>
    public string? Message { get; }

    /// <summary>The units clustered, sign-canonical (see <see cref="Msu.SignFlipped"/>), in the order k-means saw them.</summary>
    public IReadOnlyList<Msu> Units { get; }

    /// <summary>The cluster of each of <see cref="Units"/>.</summary>
    public int[] Assignments { get; }

    /// <summary>Members per cluster.</summary>
    public int[] ClusterSizes { get; }

    /// <summary>K rows of length in_features: the A parts of the centroids.</summary>
    public float[][] CentroidA { get; }

    /// <summary>K rows of length out_features: the B parts of the centroids.</summary>
    public float[][] CentroidB { get; }

    /// <summary>The <see cref="Norm"/> of each unit's folded [b; a].</summary>
    public double[] MemberNorms { get; }

    /// <summary>The mean of <see cref="MemberNorms"/> over each cluster's members.</summary>
    public double[] MeanMemberNorms { get; }

    /// <summary>Sum of squared distances to the centroids, in the clustering space.</summary>
    public double Inertia { get; }

    public int Iterations { get; }

    /// <summary>The winning k-means run's inertia after each assignment step.</summary>
    public double[] InertiaHistory { get; }

    /// <summary>The options the module was clustered with.</summary>
    public RankClusterOptions Options { get; }

    public ulong Seed => Options.KMeans.Seed;

    public ClusteringSpace Space => Options.Space;

    public UnitNorm Norm => Options.Norm;

    /// <summary>The mean rank of the contributing adapters' modules (the r of the output reweighting).</summary>
    public double MeanInputRank { get; }

    public int InFeatures => CentroidA[0].Length;

    public int OutFeatures => CentroidB[0].Length;

    public bool FanInFanOut => Units[0].FanInFanOut;

    public Adapters.ConvKernel? Kernel => Units[0].Kernel;

    /// <summary>The adapters whose units were clustered, in order of first appearance.</summary>
    public IReadOnlyList<string> Adapters => Units.Select(u => u.Adapter).Distinct().Order(StringComparer.Ordinal).ToList();

    public override string ToString() => $"{ModuleKey}: {Units.Count} units -> k {K}, inertia {Inertia:G6}";
}
