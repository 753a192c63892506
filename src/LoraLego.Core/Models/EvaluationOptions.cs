namespace LoraLego.Core.Models;

/// <summary>How <see cref="PerplexityEvaluator"/> batches and truncates rows.</summary>
public sealed record EvaluationOptions
{
    /// <summary>Rows per forward pass; shorter rows of a batch are right-padded, which a causal model never sees.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Rows longer than this keep their first MaxLength tokens; null keeps them whole.</summary>
    public int? MaxLength { get; init; }
}
