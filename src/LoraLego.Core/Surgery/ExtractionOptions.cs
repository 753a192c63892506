using LoraLego.Core.Compute;

namespace LoraLego.Core.Surgery;

/// <summary>The choices of <see cref="LoraExtractor"/>; every one is recorded in the extracted adapter's config.</summary>
public sealed record ExtractionOptions
{
    /// <summary>How many ranks each module gets; the dynamic criteria choose at most its MaxRank.</summary>
    public RankRule Rule { get; init; } = RankRule.Fixed(16);

    /// <summary>A wildcard over module keys (null: every linear layer the two models share).</summary>
    public string? Module { get; init; }

    public ComputeDevice Device { get; init; } = ComputeDevice.Auto;

    /// <summary>Told why a CUDA request fell back to the CPU.</summary>
    public Action<string>? Warn { get; init; }

    /// <summary>Extra sketch columns beyond the rank (Halko et al. suggest 5 to 10).</summary>
    public int Oversampling { get; init; } = 10;

    /// <summary>Power iterations of the range finder: each sharpens a slowly decaying spectrum at the cost of two products.</summary>
    public int PowerIterations { get; init; } = 2;

    /// <summary>Seeds the random sketch, so an extraction is reproducible on one device.</summary>
    public long Seed { get; init; }

    /// <summary>The element type the extracted factors are kept in (they are computed in float32 and float64).</summary>
    public Formats.SafetensorsDType DType { get; init; } = Formats.SafetensorsDType.F32;
}
