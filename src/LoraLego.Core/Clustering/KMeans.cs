using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using LoraLego.Core.Formats;
using static TorchSharp.torch;

namespace LoraLego.Core.Clustering;

/// <summary>
/// Lloyd's k-means with k-means++ seeding (Arthur and Vassilvitskii, 2007). All randomness comes
/// from <see cref="SplitMix64"/>, so a seed fixes the result.
/// </summary>
/// <remarks>
/// Every centroid k-means ever forms is a weighted sum of points (a seed point, or the mean of a
/// member set), so each one is kept as its weights over the n points and every distance and
/// centroid shift comes from the Gram matrix G = X X^T alone: |x_i - c|^2 = G_ii - 2 (w G)_i + w G w^T.
/// The only pass over the d-dimensional data is the one matmul that forms G (on the points'
/// device); the seeding and the Lloyd iterations then cost O(n^2 k) on the CPU, whatever d is.
/// </remarks>
public static class KMeans
{
    /// <param name="points">n x d; any floating dtype (the work is done in float64, so that near-ties
    /// between distances resolve the same way whatever the input precision).</param>
    /// <param name="k">Clusters wanted, 1..n.</param>
    /// <param name="options">Restarts, iteration limit, tolerance and seed.</param>
    public static KMeansResult Fit(Tensor points, int k, KMeansOptions options)
    {
        using var scope = NewDisposeScope();
        var x = points.to_type(ScalarType.Float64);
        var fit = FitGram(GramOf(x), (int)x.shape[0], (int)x.shape[1], k, options);
        var centroids = tensor(fit.Weights, [k, fit.Assignments.Length], device: x.device).matmul(x);
        return new KMeansResult(fit.Assignments, ToRows(centroids), fit.Inertia, fit.Iterations, fit.InertiaHistory, fit.Restart);
    }

    /// <summary>
    /// X X^T of columns [<paramref name="first"/>, first + <paramref name="count"/>) of an n x d float64 tensor
    /// (all of them when <paramref name="count"/> is null), row-major on the CPU. On the CPU each entry is computed
    /// once (<see cref="SymmetricGram"/>, libtorch's threads); elsewhere by the device's matmul.
    /// </summary>
    internal static double[] GramOf(Tensor x, int first = 0, int? count = null)
    {
        int n = (int)x.shape[0], width = (int)x.shape[1], columns = count ?? width - first;
        if (x.device_type != TorchSharp.DeviceType.CPU)
        {
            using var part = x.narrow(1, first, columns);
            using var gram = part.matmul(part.t());
            return TensorBytes.ToArray<double>(gram);
        }
        using var contiguous = x.contiguous();
        return SymmetricGram.Of(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(contiguous.bytes), n, width, first, columns, get_num_threads());
    }

    /// <summary>The best run, its centroids as k x n weights (row-major): centroid j is sum_i Weights[j, i] x_i.</summary>
    internal sealed record GramFit(int[] Assignments, double[] Weights, double Inertia, int Iterations, double[] InertiaHistory, int Restart);

    /// <summary>k-means of n points of dimension <paramref name="dimension"/> given only their Gram matrix.</summary>
    internal static GramFit FitGram(double[] gram, int n, int dimension, int k, KMeansOptions options)
    {
        options.Validate();
        if (k < 1 || k > n)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"k = {k} clusters cannot be made from {n} points");
        var points = new GramPoints(gram, n);
        double threshold = options.Tolerance * points.MeanFeatureVariance(dimension);
        var random = new SplitMix64(options.Seed);
        GramFit? best = null;
        for (int restart = 0; restart < options.Restarts; restart++)
        {
            var run = Lloyd(points, SeedPlusPlus(points, k, random), options.MaxIterations, threshold, restart);
            if (best is null || run.Inertia < best.Inertia)
                best = run;
        }
        return best!;
    }

    // Weights of the k seeds: one point each.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double[] SeedPlusPlus(GramPoints points, int k, SplitMix64 random)
    {
        int n = points.Count;
        var chosen = new List<int> { random.NextIndex(n) };
        double[] nearest = points.DistancesToPoint(chosen[0]);
        while (chosen.Count < k)
        {
            int next = Draw(nearest, random.NextDouble() * nearest.Sum());
            // Only duplicates are left unchosen: take them in order, k-means will leave their clusters empty.
            if (next < 0)
                next = Enumerable.Range(0, n).First(i => !chosen.Contains(i));
            chosen.Add(next);
            double[] toNext = points.DistancesToPoint(next);
            for (int i = 0; i < n; i++)
                nearest[i] = Math.Min(nearest[i], toNext[i]);
        }
        var weights = new double[k * n];
        for (int j = 0; j < k; j++)
            weights[j * n + chosen[j]] = 1;
        return weights;
    }

    // The index where the running sum of weights first passes target; -1 when every weight is 0.
    private static int Draw(double[] weights, double target)
    {
        double sum = 0;
        int last = -1;
        for (int i = 0; i < weights.Length; i++)
        {
            if (weights[i] <= 0)
                continue;
            sum += weights[i];
            last = i;
            if (sum > target)
                return i;
        }
        return last;
    }

    // One run from the seeds' weights. The centroids' weights live in two arrays that swap roles each iteration, and
    // the points' scratch is reused, so an iteration allocates only arrays of n or k values, not k x n ones (a 7B merge
    // at K = 16 runs about 3 600 iterations, 8 restarts of 224 modules; three fresh k x n arrays each kept the garbage
    // collector busy).
    private static GramFit Lloyd(GramPoints points, double[] weights, int maxIterations, double threshold, int restart)
    {
        var history = new List<double>();
        var moved = new double[weights.Length];
        int iterations = 0;
        while (iterations < maxIterations)
        {
            iterations++;
            var (assignments, distances) = points.Assign(weights);
            history.Add(distances.Sum());
            UpdateCentroids(assignments, distances, weights.Length / points.Count, moved);
            double shift = points.SquaredShift(weights, moved);
            (weights, moved) = (moved, weights);
            if (shift <= threshold)
                break;
        }
        var (finalAssignments, finalDistances) = points.Assign(weights);
        double inertia = finalDistances.Sum();
        history.Add(inertia);
        return new GramFit(finalAssignments, weights, inertia, iterations, history.ToArray(), restart);
    }

    // Means of the members, into `weights`; an empty cluster moves to the point farthest from its centroid, which
    // can only lower the inertia, so the history stays non-increasing.
    private static void UpdateCentroids(int[] assignments, double[] distances, int k, double[] weights)
    {
        var counts = Fill(weights, assignments, k);
        var empty = Enumerable.Range(0, k).Where(j => counts[j] == 0).ToArray();
        if (empty.Length == 0)
            return;
        int n = assignments.Length;
        var farthest = Enumerable.Range(0, n).OrderByDescending(i => distances[i]).ToArray();
        for (int e = 0; e < empty.Length; e++)
            weights[empty[e] * n + farthest[e]] = 1;
    }

    /// <summary>k x n weights, row-major, whose rows average each cluster's members; an empty cluster's row is zero.</summary>
    internal static double[] MeanWeights(int[] assignments, int k)
    {
        var weights = new double[k * assignments.Length];
        Fill(weights, assignments, k);
        return weights;
    }

    // The mean weights written over `weights`; returns each cluster's member count.
    private static int[] Fill(double[] weights, int[] assignments, int k)
    {
        int n = assignments.Length;
        var counts = new int[k];
        foreach (int a in assignments)
            counts[a]++;
        Array.Clear(weights);
        for (int i = 0; i < n; i++)
            weights[assignments[i] * n + i] = 1.0 / counts[assignments[i]];
        return counts;
    }

    internal static double[][] ToRows(Tensor t)
    {
        double[] flat = TensorBytes.ToArray<double>(t);
        int columns = (int)t.shape[1];
        return Enumerable.Range(0, (int)t.shape[0]).Select(r => flat.AsSpan(r * columns, columns).ToArray()).ToArray();
    }

    /// <summary>n points known by their Gram matrix; centroids are k x n weight matrices over them.</summary>
    private sealed class GramPoints(double[] gram, int n)
    {
        // Scratch for the centroids' dot products and weight differences, reused by every call (each call's
        // result is read before the next call).
        private double[] _dots = [], _difference = [];

        public int Count => n;

        private double SquaredNorm(int i) => gram[i * n + i];

        private ReadOnlySpan<double> Row(int i) => gram.AsSpan(i * n, n);

        // The data's variance per feature, averaged: (trace(G) / n - sum(G) / n^2) / d.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public double MeanFeatureVariance(int dimension)
        {
            double trace = 0, total = 0;
            for (int i = 0; i < n; i++)
                trace += SquaredNorm(i);
            foreach (double g in gram)
                total += g;
            return (trace / n - total / ((double)n * n)) / dimension;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public double[] DistancesToPoint(int index)
        {
            var row = Row(index);
            var distances = new double[n];
            for (int i = 0; i < n; i++)
                distances[i] = Math.Max(0, SquaredNorm(i) + SquaredNorm(index) - 2 * row[i]);
            return distances;
        }

        // (weights G)[j, :]: centroid j's dot products with every point, into the scratch the next call overwrites.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private double[] CentroidDots(ReadOnlySpan<double> weights)
        {
            int k = weights.Length / n;
            if (_dots.Length != k * n)
                _dots = new double[k * n];
            var dots = _dots;
            Array.Clear(dots);
            for (int j = 0; j < k; j++)
            {
                var target = dots.AsSpan(j * n, n);
                for (int s = 0; s < n; s++)
                {
                    double w = weights[j * n + s];
                    if (w == 0)
                        continue;
                    var row = Row(s);
                    // A multiplication and an addition per entry (no fused multiply-add), four entries at a time.
                    var weight = Vector256.Create(w);
                    int i = 0;
                    for (; i + 4 <= n; i += 4)
                        (Vector256.Create(target.Slice(i, 4)) + weight * Vector256.Create(row.Slice(i, 4))).CopyTo(target.Slice(i, 4));
                    for (; i < n; i++)
                        target[i] += w * row[i];
                }
            }
            return dots;
        }

        /// <summary>Each point's nearest centroid (the first on ties) and its squared distance to it.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public (int[] Assignments, double[] Distances) Assign(double[] weights)
        {
            int k = weights.Length / n;
            double[] dots = CentroidDots(weights);
            var centroidNorms = new double[k];
            for (int j = 0; j < k; j++)
                for (int s = 0; s < n; s++)
                    centroidNorms[j] += weights[j * n + s] * dots[j * n + s];
            var assignments = new int[n];
            var distances = new double[n];
            for (int i = 0; i < n; i++)
            {
                double nearest = double.PositiveInfinity;
                for (int j = 0; j < k; j++)
                {
                    double d = Math.Max(0, SquaredNorm(i) + centroidNorms[j] - 2 * dots[j * n + i]);
                    if (d < nearest)
                    {
                        nearest = d;
                        assignments[i] = j;
                    }
                }
                distances[i] = nearest;
            }
            return (assignments, distances);
        }

        /// <summary>sum_j |c_new_j - c_old_j|^2 = sum_j (w_new - w_old)_j G (w_new - w_old)_j^T; exactly 0 when no weight changed.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public double SquaredShift(double[] before, double[] after)
        {
            if (_difference.Length != after.Length)
                _difference = new double[after.Length];
            var difference = _difference;
            for (int i = 0; i < difference.Length; i++)
                difference[i] = after[i] - before[i];
            double[] dots = CentroidDots(difference);
            double shift = 0;
            for (int i = 0; i < difference.Length; i++)
                shift += difference[i] * dots[i];
            return shift;
        }
    }
}
