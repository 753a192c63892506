using LoraLego.Core.Clustering;

namespace LoraLego.Core.Merging;

/// <summary>The choices of a LoRA-LEGO merge; every one is recorded in the merged adapter's provenance (<see cref="Adapters.Provenance"/>).</summary>
public sealed record LegoOptions
{
    public RankClusterOptions Clustering { get; init; } = new();

    /// <summary>Rescale each centroid so its norm is its members' mean norm (norm decay, Section 4).</summary>
    public bool ParameterReweight { get; init; } = true;

    /// <summary>
    /// Multiply the merged update by sqrt(r / k) (variance expansion, Section 4). Off by default: the
    /// mean target already divides by the number of adapters, and on the measured skill sets the
    /// extra factor cost quality wherever k differed from the input rank (docs/merge-quality.md).
    /// </summary>
    public bool OutputReweight { get; init; }

    public LegoTarget Target { get; init; } = LegoTarget.Mean;

    /// <summary>Wildcard over module keys; modules it does not match are left out of the merge.</summary>
    public string? ModuleFilter { get; init; }
}
