namespace LoraLego.Core.Clustering;

/// <summary>The norm of a unit's vector [b; a] that parameter reweighting restores.</summary>
public enum UnitNorm
{
    /// <summary>Largest absolute entry (the public reimplementation's choice, the default).</summary>
    LInfinity,

    /// <summary>Euclidean length.</summary>
    L2,
}
