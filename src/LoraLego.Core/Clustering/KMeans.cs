using LoraLego.Core.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Core.Clustering;

/// <summary>
/// Lloyd's k-means with k-means++ seeding (Arthur and Vassilvitskii, 2007), run in TorchSharp on
/// whatever device the points live on. All randomness comes from <see cref="SplitMix64"/>, so a
/// seed fixes the result.
/// </summary>
public static class KMeans
{
    /// <param name="points">n x d; any floating dtype (the work is done in float64, so that near-ties
    /// between distances resolve the same way whatever the input precision).</param>
    /// <param name="k">Clusters wanted, 1..n.</param>
    /// <param name="options">Restarts, iteration limit, tolerance and seed.</param>
    public static KMeansResult Fit(Tensor points, int k, KMeansOptions options)
    {
        options.Validate();
        int n = (int)points.shape[0];
        if (k < 1 || k > n)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"k = {k} clusters cannot be made from {n} points");
        using var scope = NewDisposeScope();
        var x = points.to_type(ScalarType.Float64);
        var squaredNorms = x.square().sum(dim: 1L);
        double threshold = options.Tolerance * x.var(0L, unbiased: false).mean().item<double>();
        var random = new SplitMix64(options.Seed);
        KMeansResult? best = null;
        for (int restart = 0; restart < options.Restarts; restart++)
        {
            using var runScope = NewDisposeScope();
            var centroids = SeedPlusPlus(x, squaredNorms, k, random);
            var run = Lloyd(x, squaredNorms, centroids, options.MaxIterations, threshold, restart);
            if (best is null || run.Inertia < best.Inertia)
                best = run;
        }
        return best!;
    }

    // The Scalars are static, never finalized: TorchSharp frees a temporary Scalar in its finalizer, which can run while libtorch still reads it (TorchSharp PR #1434), and k-means calls these thousands of times per module.
    private static readonly Scalar Zero = 0.0.ToScalar();
    private static readonly Scalar One = 1.0.ToScalar();
    private static readonly Scalar MinusTwo = (-2.0).ToScalar();

    private static Tensor SquaredDistances(Tensor x, Tensor squaredNorms, Tensor centroids) =>
        squaredNorms.unsqueeze(1).add(centroids.square().sum(dim: 1L).unsqueeze(0)).add_(x.matmul(centroids.t()), MinusTwo).clamp_min_(Zero);

    private static Tensor SeedPlusPlus(Tensor x, Tensor squaredNorms, int k, SplitMix64 random)
    {
        int n = (int)x.shape[0];
        var chosen = new List<int> { random.NextIndex(n) };
        double[] nearest = DistancesTo(chosen[0]);
        while (chosen.Count < k)
        {
            int next = Draw(nearest, random.NextDouble() * nearest.Sum());
            // Only duplicates are left unchosen: take them in order, k-means will leave their clusters empty.
            if (next < 0)
                next = Enumerable.Range(0, n).First(i => !chosen.Contains(i));
            chosen.Add(next);
            double[] toNext = DistancesTo(next);
            for (int i = 0; i < n; i++)
                nearest[i] = Math.Min(nearest[i], toNext[i]);
        }
        return x.index_select(0, tensor(chosen.Select(i => (long)i).ToArray(), device: x.device));

        double[] DistancesTo(int index)
        {
            using var d = SquaredDistances(x, squaredNorms, x[index].unsqueeze(0));
            using var cpu = d.squeeze(1).cpu();
            return TensorBytes.ToArray<double>(cpu);
        }
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

    private static KMeansResult Lloyd(Tensor x, Tensor squaredNorms, Tensor centroids, int maxIterations, double threshold, int restart)
    {
        int k = (int)centroids.shape[0];
        var history = new List<double>();
        int iterations = 0;
        while (iterations < maxIterations)
        {
            iterations++;
            // Each iteration's temporaries die with it; only the new centroids live on.
            using var iterationScope = NewDisposeScope();
            var (distances, assignments) = SquaredDistances(x, squaredNorms, centroids).min(1L);
            history.Add(distances.sum().item<double>());
            var moved = UpdateCentroids(x, centroids, assignments, distances, k);
            double shift = (moved - centroids).square().sum().item<double>();
            centroids.Dispose();
            centroids = moved.MoveToOuterDisposeScope();
            if (shift <= threshold)
                break;
        }
        var (finalDistances, finalAssignments) = SquaredDistances(x, squaredNorms, centroids).min(1L);
        double inertia = finalDistances.sum().item<double>();
        history.Add(inertia);
        return new KMeansResult(ToInts(finalAssignments), ToRows(centroids), inertia, iterations, history.ToArray(), restart);
    }

    // Means of the members; an empty cluster moves to the point farthest from its centroid, which
    // can only lower the inertia, so the history stays non-increasing.
    private static Tensor UpdateCentroids(Tensor x, Tensor centroids, Tensor assignments, Tensor distances, int k)
    {
        var oneHot = nn.functional.one_hot(assignments, k).to_type(ScalarType.Float64);
        var counts = oneHot.sum(dim: 0L);
        var means = oneHot.t().matmul(x).div_(counts.clamp_min(One).unsqueeze(1));
        var empty = counts.eq(Zero).nonzero().squeeze(1);
        if (empty.shape[0] == 0)
            return means;
        var farthest = distances.argsort(descending: true);
        for (long e = 0; e < empty.shape[0]; e++)
            means[empty[e]] = x[farthest[e]];
        return means;
    }

    private static int[] ToInts(Tensor t)
    {
        using var cpu = t.to_type(ScalarType.Int32).cpu();
        return TensorBytes.ToArray<int>(cpu);
    }

    internal static double[][] ToRows(Tensor t)
    {
        using var cpu = t.to_type(ScalarType.Float64).cpu().contiguous();
        double[] flat = TensorBytes.ToArray<double>(cpu);
        int columns = (int)t.shape[1];
        return Enumerable.Range(0, (int)t.shape[0]).Select(r => flat.AsSpan(r * columns, columns).ToArray()).ToArray();
    }
}
