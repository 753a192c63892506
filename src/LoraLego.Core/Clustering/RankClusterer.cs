using LoraLego.Core.Compute;
using LoraLego.Core.Formats;
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
        int requestedK = options.K ?? pool.Count;
        using var scope = NewDisposeScope();
        var (units, members, memberNorms) = Canonical(pool, device, options.Norm);
        int n = units.Count;
        if (n <= requestedK)
        {
            string? message = n < requestedK
                ? $"{n} units, fewer than k = {requestedK}: every unit kept as its own cluster (rank {n})"
                : null;
            return Build(pool, options, requestedK, units, members, memberNorms, Enumerable.Range(0, n).ToArray(), 0, 0, [0], message);
        }
        var gram = SpaceGram(members, pool.OutFeatures, options.Space);
        var result = KMeans.FitGram(gram, n, pool.OutFeatures + pool.InFeatures, requestedK, options.KMeans);
        var (assignments, emptied) = DropEmpty(result.Assignments, requestedK);
        string? dropped = emptied > 0
            ? $"{emptied} of {requestedK} clusters stayed empty (too few distinct units): rank {requestedK - emptied}"
            : null;
        return Build(pool, options, requestedK, units, members, memberNorms, assignments, result.Inertia, result.Iterations, result.InertiaHistory, dropped);
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

    // Every unit as its folded vector [sign(s) sqrt|s| b; sqrt|s| a] (Msu.Folded), turned to its
    // canonical sign (SignCanonicalizer) and sorted by value, as the rows of one float64 tensor:
    // sorting makes the result independent of the order of ranks and of inputs (k-means++ draws
    // indices, so the same points in another order would be seeded differently). The whole module
    // is handled as one tensor; the folding is an exact multiplication by one factor per row and part.
    private static (List<Msu> Units, Tensor Members, double[] MemberNorms) Canonical(MsuPool pool, Device device, UnitNorm norm)
    {
        int n = pool.Count, outFeatures = pool.OutFeatures;
        var raw = pool.Rows();
        var (flip, at, entries) = SignCanonicalizer.LargestEntries(raw, pool.Units, outFeatures);
        var aFactors = new double[n];
        var bFactors = new double[n];
        for (int i = 0; i < n; i++)
        {
            double scaling = pool.Units[i].Scaling;
            aFactors[i] = (flip[i] ? -1 : 1) * Math.Sqrt(Math.Abs(scaling));
            bFactors[i] = Math.Sign(scaling) * aFactors[i];
        }
        // The rows are put in order while still in their stored dtype, and converted once.
        int[] order = ValueOrder(raw, bFactors, aFactors, outFeatures);
        var members = raw.index_select(0, tensor(order.Select(i => (long)i).ToArray())).to(ScalarType.Float64, device);
        members.narrow(1, 0, outFeatures).mul_(tensor(order.Select(i => bFactors[i]).ToArray(), [n, 1], device: device));
        members.narrow(1, outFeatures, pool.InFeatures).mul_(tensor(order.Select(i => aFactors[i]).ToArray(), [n, 1], device: device));
        var units = order.Select(i => flip[i] ? pool.Units[i].Negated() : pool.Units[i]).ToList();
        // The L-infinity norm of a folded row is its factor times the largest raw entry, rounded
        // once, as the largest of the rounded products is.
        double[] memberNorms = norm == UnitNorm.LInfinity
            ? order.Select(i => Math.Abs((at[i] < outFeatures ? bFactors[i] : aFactors[i]) * entries[i])).ToArray()
            : TensorBytes.ToArray<double>(linalg.vector_norm(members, 2, dims: [1]));
        return (units, members, memberNorms);
    }

    // The lexicographic order of the folded rows (stable: equal rows keep their order), folded
    // here as the tensor would be (one double product per value). Rows nearly always differ
    // within their first entries; only when two do not are all values fetched.
    private static int[] ValueOrder(Tensor raw, double[] bFactors, double[] aFactors, int outFeatures)
    {
        int n = (int)raw.shape[0], width = (int)raw.shape[1], leading = Math.Min(width, 32);
        double[] Folded(Tensor columns)
        {
            int w = (int)columns.shape[1];
            double[] values = TensorBytes.ToArray<double>(columns.to_type(ScalarType.Float64));
            for (int i = 0; i < n; i++)
                for (int c = 0; c < w; c++)
                    values[i * w + c] *= c < outFeatures ? bFactors[i] : aFactors[i];
            return values;
        }
        double[] first = Folded(raw.narrow(1, 0, leading));
        var all = new Lazy<double[]>(() => Folded(raw));
        return Enumerable.Range(0, n).OrderBy(i => i, Comparer<int>.Create((x, y) =>
        {
            int c = Lexicographic(first.AsSpan(x * leading, leading), first.AsSpan(y * leading, leading));
            return c != 0 || x == y || leading == width ? c : Lexicographic(all.Value.AsSpan(x * width, width), all.Value.AsSpan(y * width, width));
        })).ToArray();
    }

    private static int Lexicographic(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            int c = x[i].CompareTo(y[i]);
            if (c != 0)
                return c;
        }
        return 0;
    }

    // The Gram matrix of the points in the clustering space. The normalised space's is assembled
    // from the Gram matrices of the b and a parts, so the normalised vectors are never formed:
    // [b_i/|b_i|; a_i/|a_i|] . [b_j/|b_j|; a_j/|a_j|] = b_i.b_j / (|b_i| |b_j|) + a_i.a_j / (|a_i| |a_j|).
    private static double[] SpaceGram(Tensor members, int outFeatures, ClusteringSpace space)
    {
        if (space == ClusteringSpace.Raw)
            return KMeans.GramOf(members);
        int n = (int)members.shape[0];
        var gram = Normalised(KMeans.GramOf(members.narrow(1, 0, outFeatures)), n);
        var aGram = Normalised(KMeans.GramOf(members.narrow(1, outFeatures, members.shape[1] - outFeatures)), n);
        for (int i = 0; i < gram.Length; i++)
            gram[i] += aGram[i];
        return gram;
    }

    // G_ij / (|x_i| |x_j|): the Gram matrix of the rows scaled to unit length; a zero row stays zero.
    private static double[] Normalised(double[] gram, int n)
    {
        var inverseNorms = new double[n];
        for (int i = 0; i < n; i++)
        {
            double norm = Math.Sqrt(gram[i * n + i]);
            inverseNorms[i] = norm > 0 ? 1 / norm : 0;
        }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                gram[i * n + j] *= inverseNorms[i] * inverseNorms[j];
        return gram;
    }
    /// <summary>The <paramref name="norm"/> of a vector.</summary>
    public static double NormOf(ReadOnlySpan<double> vector, UnitNorm norm)
    {
        double acc = 0;
        // One loop per norm, so that the per-element test of which norm it is leaves the hot loop.
        if (norm == UnitNorm.L2)
        {
            foreach (double x in vector)
                acc += x * x;
            return Math.Sqrt(acc);
        }
        foreach (double x in vector)
            acc = Math.Max(acc, Math.Abs(x));
        return acc;
    }

    private static (int[] Assignments, int Emptied) DropEmpty(int[] assignments, int k)
    {
        var used = assignments.Distinct().Order().ToArray();
        if (used.Length == k)
            return (assignments, 0);
        var renumber = used.Select((old, index) => (old, index)).ToDictionary(p => p.old, p => p.index);
        return (Array.ConvertAll(assignments, a => renumber[a]), k - used.Length);
    }

    private static RankCluster Build(MsuPool pool, RankClusterOptions options, int requestedK, List<Msu> units, Tensor members,
        double[] memberNorms, int[] assignments, double inertia, int iterations, double[] history, string? message)
    {
        int k = assignments.Max() + 1;
        using var centroids = tensor(KMeans.MeanWeights(assignments, k), [k, units.Count], device: members.device).matmul(members).to_type(ScalarType.Float32);
        float[] flat = TensorBytes.ToArray<float>(centroids);
        int width = pool.OutFeatures + pool.InFeatures;
        float[][] Part(int offset, int length) =>
            Enumerable.Range(0, k).Select(j => flat.AsSpan(j * width + offset, length).ToArray()).ToArray();
        return new RankCluster(pool.ModuleKey, requestedK, units, assignments,
            Part(pool.OutFeatures, pool.InFeatures), Part(0, pool.OutFeatures), memberNorms,
            inertia, iterations, history, options, pool.MeanInputRank, message);
    }
}
