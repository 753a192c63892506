using LoraLego.Core.Compute;
using LoraLego.Core.Units;
using static TorchSharp.torch;

namespace LoraLego.Core.Clustering;

/// <summary>
/// Rank-wise clustering (LoRA-LEGO, Section 4): the pooled units of a module, sign-canonicalised
/// and put in an order that depends only on their values, are grouped by k-means; each centroid is
/// the mean of its members.
/// </summary>
public static class RankClusterer
{
    /// <summary>Clusters one module's pool.</summary>
    /// <param name="pool">The module's units from every input.</param>
    /// <param name="options">k, k-means settings, space and norm; null for the defaults.</param>
    /// <param name="device">A resolved torch device; null resolves <see cref="RankClusterOptions.Device"/>.</param>
    /// <param name="verbose">Told when a CUDA request falls back to the CPU.</param>
    public static RankCluster Cluster(MsuPool pool, RankClusterOptions? options = null, Device? device = null, Action<string>? verbose = null)
    {
        options ??= new RankClusterOptions();
        options.Validate();
        device ??= DeviceSelector.Resolve(options.Device, verbose);
        int requestedK = options.K ?? pool.LargestInputRank;
        var units = Canonical(pool.Units);
        double[][] vectors = units.Select(u => u.Vector).ToArray();
        int n = vectors.Length;
        if (n <= requestedK)
        {
            string? message = n < requestedK
                ? $"{n} units, fewer than k = {requestedK}: every unit kept as its own cluster (rank {n})"
                : null;
            return Build(pool, options, requestedK, units, Enumerable.Range(0, n).ToArray(), 0, 0, [0], message, device);
        }
        using var scope = NewDisposeScope();
        var points = tensor(vectors.Select(v => Space(v, pool.OutFeatures, options.Space)).SelectMany(v => v).ToArray(),
            [n, pool.OutFeatures + pool.InFeatures], device: device);
        var result = KMeans.Fit(points, requestedK, options.KMeans);
        var (assignments, emptied) = DropEmpty(result.Assignments, requestedK);
        string? dropped = emptied > 0
            ? $"{emptied} of {requestedK} clusters stayed empty (too few distinct units): rank {requestedK - emptied}"
            : null;
        return Build(pool, options, requestedK, units, assignments, result.Inertia, result.Iterations, result.InertiaHistory, dropped, device);
    }

    /// <summary>
    /// Clusters units of any adapters and modules. A module's units can arrive from several
    /// adapters at any point of the stream, so all of them are gathered first; the modules are then
    /// clustered one at a time as the result is enumerated.
    /// </summary>
    public static IEnumerable<RankCluster> Cluster(IEnumerable<Msu> units, RankClusterOptions? options = null, Action<string>? verbose = null)
    {
        options ??= new RankClusterOptions();
        var device = DeviceSelector.Resolve(options.Device, verbose);
        foreach (var pool in MsuPool.FromUnits(units))
            yield return Cluster(pool, options, device, verbose);
    }

    private sealed record CanonicalUnit(Msu Unit, double[] Vector);

    // Sorting by value makes the result independent of the order of ranks and of inputs: k-means++
    // draws indices, so the same points in another order would be seeded differently.
    private static List<CanonicalUnit> Canonical(IEnumerable<Msu> units) =>
        units.Select(SignCanonicalizer.Canonicalize)
            .Select(u => new CanonicalUnit(u, [.. u.FoldedB(), .. u.FoldedA()]))
            .OrderBy(c => c.Vector, LexicographicComparer.Instance)
            .ToList();

    private sealed class LexicographicComparer : IComparer<double[]>
    {
        public static readonly LexicographicComparer Instance = new();

        public int Compare(double[]? x, double[]? y)
        {
            for (int i = 0; i < x!.Length; i++)
            {
                int c = x[i].CompareTo(y![i]);
                if (c != 0)
                    return c;
            }
            return 0;
        }
    }

    private static double[] Space(double[] vector, int outFeatures, ClusteringSpace space)
    {
        if (space == ClusteringSpace.Raw)
            return vector;
        var normalised = (double[])vector.Clone();
        NormaliseInPlace(normalised.AsSpan(0, outFeatures));
        NormaliseInPlace(normalised.AsSpan(outFeatures));
        return normalised;
    }

    private static void NormaliseInPlace(Span<double> part)
    {
        double sum = 0;
        foreach (double x in part)
            sum += x * x;
        if (sum == 0)
            return;
        double scale = 1 / Math.Sqrt(sum);
        for (int i = 0; i < part.Length; i++)
            part[i] *= scale;
    }

    /// <summary>The <paramref name="norm"/> of a vector.</summary>
    public static double NormOf(ReadOnlySpan<double> vector, UnitNorm norm)
    {
        double acc = 0;
        foreach (double x in vector)
            acc = norm == UnitNorm.L2 ? acc + x * x : Math.Max(acc, Math.Abs(x));
        return norm == UnitNorm.L2 ? Math.Sqrt(acc) : acc;
    }

    private static (int[] Assignments, int Emptied) DropEmpty(int[] assignments, int k)
    {
        var used = assignments.Distinct().Order().ToArray();
        if (used.Length == k)
            return (assignments, 0);
        var renumber = used.Select((old, index) => (old, index)).ToDictionary(p => p.old, p => p.index);
        return (Array.ConvertAll(assignments, a => renumber[a]), k - used.Length);
    }

    private static RankCluster Build(MsuPool pool, RankClusterOptions options, int requestedK, List<CanonicalUnit> units,
        int[] assignments, double inertia, int iterations, double[] history, string? message, Device device)
    {
        int k = assignments.Max() + 1;
        int width = pool.OutFeatures + pool.InFeatures;
        using var scope = NewDisposeScope();
        var members = tensor(units.SelectMany(u => u.Vector).ToArray(), [units.Count, width], device: device);
        var oneHot = nn.functional.one_hot(tensor(assignments.Select(a => (long)a).ToArray(), device: device), k).to_type(ScalarType.Float64);
        var centroids = KMeans.ToRows(oneHot.t().matmul(members) / oneHot.sum(dim: 0L).unsqueeze(1));
        return new RankCluster(pool.ModuleKey, requestedK, units.Select(u => u.Unit).ToList(), assignments,
            centroids.Select(c => Array.ConvertAll(c[pool.OutFeatures..], x => (float)x)).ToArray(),
            centroids.Select(c => Array.ConvertAll(c[..pool.OutFeatures], x => (float)x)).ToArray(),
            units.Select(u => NormOf(u.Vector, options.Norm)).ToArray(),
            inertia, iterations, history, options, pool.MeanInputRank, message);
    }
}
