namespace LoraLego.Core.Clustering;

/// <summary>The best of the k-means runs.</summary>
/// <param name="Assignments">The cluster of each point.</param>
/// <param name="Centroids">k rows, in the space the points were given in.</param>
/// <param name="Inertia">Sum of squared distances from each point to its centroid.</param>
/// <param name="Iterations">Lloyd iterations of the winning run.</param>
/// <param name="InertiaHistory">The winning run's inertia after each assignment step; never increases.</param>
/// <param name="Restart">Which start won (0-based).</param>
public sealed record KMeansResult(int[] Assignments, double[][] Centroids, double Inertia, int Iterations, double[] InertiaHistory, int Restart)
{
    public int K => Centroids.Length;
}
