using LoraLego.Core.Compute;
using LoraLego.Core.Formats;
using LoraLego.Core.Units;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;
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
        using var workspace = new ClusterWorkspace();
        return Cluster(pool, options, device, verbose, workspace);
    }

    /// <summary>As the public overload, the rows widened into <paramref name="workspace"/>, which a merge reuses for every module.</summary>
    internal static RankCluster Cluster(MsuPool pool, RankClusterOptions? options, Device? device, Action<string>? verbose, ClusterWorkspace workspace)
    {
        options ??= new RankClusterOptions();
        options.Validate();
        device ??= DeviceSelector.Resolve(options.Device, verbose);
        int requestedK = options.K ?? pool.Count;
        using var scope = NewDisposeScope();
        var (units, members, memberNorms) = Canonical(pool, device, options.Norm, workspace);
        int n = units.Count;
        if (n <= requestedK)
        {
            string? message = n < requestedK
                ? $"{n} units, fewer than k = {requestedK}: every unit kept as its own cluster (rank {n})"
                : null;
            return Build(pool, options, requestedK, units, members, memberNorms, Enumerable.Range(0, n).ToArray(), 0, 0, [0], message);
        }
        var gram = SpaceGram(members, options.Space);
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
    /// clustered side by side (<see cref="RankClusterQueue"/>) and handed on in order as the result is enumerated.
    /// </summary>
    public static IEnumerable<RankCluster> Cluster(IEnumerable<Msu> units, RankClusterOptions? options = null, Action<string>? verbose = null)
    {
        options ??= new RankClusterOptions();
        var device = DeviceSelector.Resolve(options.Device, verbose);
        options.Validate();
        foreach (var cluster in RankClusterQueue.InOrder(MsuPool.FromUnits(units), options, device))
            yield return cluster;
    }

    // Every unit as its folded vector [sign(s) sqrt|s| b; sqrt|s| a] (Msu.Folded), turned to its
    // canonical sign (SignCanonicalizer) and sorted by value: sorting makes the result independent of
    // the order of ranks and of inputs (k-means++ draws indices, so the same points in another order
    // would be seeded differently). The module is read once as float32 rows (exact for every stored
    // dtype but F64) and put in order in place; the folding (one float64 multiplication by one factor
    // per row and part) is applied wherever a folded value is read (MemberRows).
    private static (List<Msu> Units, MemberRows Members, double[] MemberNorms) Canonical(MsuPool pool, Device device, UnitNorm norm, ClusterWorkspace workspace)
    {
        int n = pool.Count, outFeatures = pool.OutFeatures, width = outFeatures + pool.InFeatures;
        var rows = workspace.Rows(pool);
        var values = rows.AsSpan(0, n * width);
        var (flip, at, entries) = SignCanonicalizer.LargestEntries<float>(values, width, pool.Units, outFeatures);
        var aFactors = new double[n];
        var bFactors = new double[n];
        for (int i = 0; i < n; i++)
        {
            int sign = flip[i] ? -1 : 1;
            aFactors[i] = sign * pool.Units[i].AFactor;
            bFactors[i] = sign * pool.Units[i].BFactor;
        }
        int[] order = ValueOrder(values, n, width, bFactors, aFactors, outFeatures);
        Permute(values, width, order);
        var members = new MemberRows(rows, n, width, outFeatures, order.Select(i => bFactors[i]).ToArray(),
            order.Select(i => aFactors[i]).ToArray(), workspace.GramThreads);
        if (device.type != DeviceType.CPU)
            members.MoveTo(device, workspace.Staging((long)n * width));
        var units = order.Select(i => flip[i] ? pool.Units[i].Negated() : pool.Units[i]).ToList();
        // The L-infinity norm of a folded row is its factor times the largest raw entry, rounded
        // once, as the largest of the rounded products is.
        double[] memberNorms = norm == UnitNorm.LInfinity
            ? order.Select(i => Math.Abs((at[i] < outFeatures ? bFactors[i] : aFactors[i]) * entries[i])).ToArray()
            : TensorBytes.ToArray<double>(linalg.vector_norm(members.OnDevice ?? members.ToTensor(), 2, dims: [1]));
        return (units, members, memberNorms);
    }

    // Row r becomes row order[r], in place: each cycle of the permutation moves through one spare row.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Permute(Span<float> rows, int width, int[] order)
    {
        var placed = new bool[order.Length];
        var spare = new float[width];
        for (int start = 0; start < order.Length; start++)
        {
            if (placed[start])
                continue;
            rows.Slice(start * width, width).CopyTo(spare);
            int r = start;
            for (; order[r] != start; r = order[r])
            {
                rows.Slice(order[r] * width, width).CopyTo(rows.Slice(r * width, width));
                placed[r] = true;
            }
            spare.CopyTo(rows.Slice(r * width, width));
            placed[r] = true;
        }
    }

    // The lexicographic order of the folded rows (stable: equal rows keep their order), each value
    // folded as the members are (one double product). Rows nearly always differ within their
    // first entries, so the products are formed only as far as a comparison reads. A binary
    // insertion sort, inserting after equal rows, keeps it stable.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int[] ValueOrder(ReadOnlySpan<float> values, int n, int width, double[] bFactors, double[] aFactors, int outFeatures)
    {
        var order = new int[n];
        for (int count = 0; count < n; count++)
        {
            int low = 0, high = count;
            while (low < high)
            {
                int middle = (low + high) / 2;
                if (Compare(values, width, bFactors, aFactors, outFeatures, order[middle], count) <= 0)
                    low = middle + 1;
                else
                    high = middle;
            }
            Array.Copy(order, low, order, low + 1, count - low);
            order[low] = count;
        }
        return order;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Compare(ReadOnlySpan<float> values, int width, double[] bFactors, double[] aFactors, int outFeatures, int x, int y)
    {
        for (int c = 0; c < width; c++)
        {
            double fx = c < outFeatures ? bFactors[x] : aFactors[x], fy = c < outFeatures ? bFactors[y] : aFactors[y];
            int order = ((double)values[x * width + c] * fx).CompareTo((double)values[y * width + c] * fy);
            if (order != 0)
                return order;
        }
        return 0;
    }

    // The Gram matrix of the points in the clustering space, assembled from the Gram matrices of the
    // b and a parts. The normalised space's never forms the normalised vectors:
    // [b_i/|b_i|; a_i/|a_i|] . [b_j/|b_j|; a_j/|a_j|] = b_i.b_j / (|b_i| |b_j|) + a_i.a_j / (|a_i| |a_j|).
    private static double[] SpaceGram(MemberRows members, ClusteringSpace space)
    {
        int n = members.Count;
        var gram = members.PartGram(bPart: true);
        var aGram = members.PartGram(bPart: false);
        if (space == ClusteringSpace.Normalized)
        {
            Normalise(gram, n);
            Normalise(aGram, n);
        }
        for (int i = 0; i < gram.Length; i++)
            gram[i] += aGram[i];
        return gram;
    }

    // G_ij / (|x_i| |x_j|): the Gram matrix of the rows scaled to unit length; a zero row stays zero.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Normalise(double[] gram, int n)
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

    private static RankCluster Build(MsuPool pool, RankClusterOptions options, int requestedK, List<Msu> units, MemberRows members,
        double[] memberNorms, int[] assignments, double inertia, int iterations, double[] history, string? message)
    {
        int k = assignments.Max() + 1;
        var (centroidA, centroidB) = Centroids(members, assignments, k, pool.OutFeatures);
        return new RankCluster(pool.ModuleKey, requestedK, units, assignments, centroidA, centroidB, memberNorms,
            inertia, iterations, history, options, pool.MeanInputRank, message);
    }

    // The members' means rounded to float32, as each centroid's A and B parts. On the CPU each mean
    // is summed member by member in their order, one fused multiply-add by 1/m_j of each folded value
    // (widened and multiplied by its factor in float64, as MemberRows folds it): the additions the dense
    // product (mean weights) x members makes where its weights are not zero, without its k x n zeros.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (float[][] A, float[][] B) Centroids(MemberRows members, int[] assignments, int k, int outFeatures)
    {
        int n = assignments.Length, width = members.Width;
        if (members.OnDevice is { } onDevice)
        {
            using var means = tensor(KMeans.MeanWeights(assignments, k), [k, n], device: onDevice.device).matmul(onDevice).to_type(ScalarType.Float32);
            float[] flat = TensorBytes.ToArray<float>(means);
            float[][] Part(int offset, int length) =>
                Enumerable.Range(0, k).Select(j => flat.AsSpan(j * width + offset, length).ToArray()).ToArray();
            return (Part(outFeatures, width - outFeatures), Part(0, outFeatures));
        }
        var centroidA = new float[k][];
        var centroidB = new float[k][];
        var cluster = new int[n];
        for (int j = 0; j < k; j++)
        {
            int size = 0;
            for (int i = 0; i < n; i++)
                if (assignments[i] == j)
                    cluster[size++] = i;
            var inCluster = cluster.AsSpan(0, size);
            centroidB[j] = Mean(members.Values, width, inCluster, 0, outFeatures, members.BFactors);
            centroidA[j] = Mean(members.Values, width, inCluster, outFeatures, width - outFeatures, members.AFactors);
        }
        return (centroidA, centroidB);
    }

    // The mean of the members' (row indices in ascending order) folded columns [offset, offset + length), rounded to
    // float32. Thirty-two columns at a time, their sums held in eight registers while every member is added (the sums
    // never go to memory, and eight independent chains keep the multiply-add units busy); each sum starts at +0 and
    // takes the members in order, so its bits are those of one sum per column.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float[] Mean(ReadOnlySpan<float> rows, int width, ReadOnlySpan<int> members, int offset, int length, ReadOnlySpan<double> factors)
    {
        var mean = new float[length];
        double weight = 1.0 / members.Length;
        var w = Vector256.Create(weight);
        int c = 0;
        for (; c + 32 <= length; c += 32)
        {
            Vector256<double> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
            foreach (int m in members)
            {
                var f = Vector256.Create(factors[m]);
                var row = rows.Slice(m * width + offset + c, 32);
                var (l0, h0) = Vector256.Widen(Vector256.Create(row[..8]));
                var (l1, h1) = Vector256.Widen(Vector256.Create(row.Slice(8, 8)));
                var (l2, h2) = Vector256.Widen(Vector256.Create(row.Slice(16, 8)));
                var (l3, h3) = Vector256.Widen(Vector256.Create(row.Slice(24, 8)));
                s0 = SimdFma.MultiplyAdd(w, l0 * f, s0);
                s1 = SimdFma.MultiplyAdd(w, h0 * f, s1);
                s2 = SimdFma.MultiplyAdd(w, l1 * f, s2);
                s3 = SimdFma.MultiplyAdd(w, h1 * f, s3);
                s4 = SimdFma.MultiplyAdd(w, l2 * f, s4);
                s5 = SimdFma.MultiplyAdd(w, h2 * f, s5);
                s6 = SimdFma.MultiplyAdd(w, l3 * f, s6);
                s7 = SimdFma.MultiplyAdd(w, h3 * f, s7);
            }
            var into = mean.AsSpan(c, 32);
            Vector256.Narrow(s0, s1).CopyTo(into[..8]);
            Vector256.Narrow(s2, s3).CopyTo(into.Slice(8, 8));
            Vector256.Narrow(s4, s5).CopyTo(into.Slice(16, 8));
            Vector256.Narrow(s6, s7).CopyTo(into.Slice(24, 8));
        }
        for (; c < length; c++)
        {
            double sum = 0;
            foreach (int m in members)
                sum = Math.FusedMultiplyAdd(weight, rows[m * width + offset + c] * factors[m], sum);
            mean[c] = (float)sum;
        }
        return mean;
    }
}
