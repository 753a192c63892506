namespace LoraLego.Core.Clustering;

/// <summary>Lloyd's k-means with k-means++ starts.</summary>
public sealed record KMeansOptions
{
    /// <summary>Independent k-means++ starts; the one with the lowest inertia wins.</summary>
    public int Restarts { get; init; } = 8;

    public int MaxIterations { get; init; } = 300;

    /// <summary>
    /// A run stops when the centroids move (summed squared shift) by at most Tolerance times the
    /// data's mean per-feature variance, scikit-learn's criterion, so it does not depend on the
    /// units' scale.
    /// </summary>
    public double Tolerance { get; init; } = 1e-4;

    public ulong Seed { get; init; }

    public void Validate()
    {
        if (Restarts < 1)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"Restarts must be at least 1, not {Restarts}");
        if (MaxIterations < 1)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"MaxIterations must be at least 1, not {MaxIterations}");
        if (!(Tolerance >= 0))
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"Tolerance must be non-negative, not {Tolerance}");
    }
}
