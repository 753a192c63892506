namespace LoraLego.Core.Clustering;

/// <summary>The vectors k-means compares. Centroids are always means of the units' unnormalised [b; a].</summary>
public enum ClusteringSpace
{
    /// <summary>
    /// [b/|b|; a/|a|]: units are grouped by direction alone, so a large unit does not capture
    /// every small one near it (the public reimplementation's choice, the default).
    /// </summary>
    Normalized,

    /// <summary>The folded [b; a] as it is, so magnitude takes part in the grouping.</summary>
    Raw,
}
