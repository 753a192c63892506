using LoraLego.Core.Compute;

namespace LoraLego.Core.Merging;

/// <summary>Where a merge is: called before each module is merged.</summary>
/// <param name="ModuleIndex">Zero-based position of the module.</param>
/// <param name="ModuleCount">How many modules the merge produces.</param>
/// <param name="ModuleKey">The module's path, e.g. model.layers.0.self_attn.q_proj.</param>
public readonly record struct MergeProgress(int ModuleIndex, int ModuleCount, string ModuleKey);

/// <summary>The parameters of a standard (PEFT add_weighted_adapter) merge; the per-adapter weights live in <see cref="MergeInput"/>.</summary>
public sealed class MergeOptions
{
    /// <summary>The merged adapter's name.</summary>
    public string Name { get; init; } = "merged";

    /// <summary>
    /// PEFT's svd_rank: the rank the SVD methods cut to (and the mixed-rank dense fallbacks of the factor-wise methods).
    /// Null: the largest config r among the inputs, as PEFT.
    /// </summary>
    public int? Rank { get; init; }

    /// <summary>The fraction of entries kept by TIES, DARE and magnitude pruning, in (0, 1]; required by those methods.</summary>
    public double? Density { get; init; }

    /// <summary>How TIES elects signs; only for the TIES methods. Null: Total, PEFT's default.</summary>
    public MajoritySign? MajoritySign { get; init; }

    /// <summary>
    /// PEFT's svd_clamp, a quantile in (0, 1]: after the SVD, entries of U*S and Vh beyond that quantile of all their
    /// values are clamped (symmetrically). Only for the SVD methods. Null: no clamp.
    /// </summary>
    public double? Clamp { get; init; }

    /// <summary>
    /// Seeds the DARE methods' random drops: the same seed gives the same drops on the CPU and on CUDA (they are drawn
    /// on the CPU). Null: a fresh seed, reported through <see cref="Verbose"/>.
    /// </summary>
    public long? Seed { get; init; }

    /// <summary>Where the tensor math runs; Auto uses CUDA when TorchSharp sees it, else the CPU.</summary>
    public ComputeDevice Device { get; init; } = ComputeDevice.Auto;

    /// <summary>
    /// Take PEFT's route in the SVD methods: form the dense out x in combination and take its full SVD. Without it,
    /// plain Svd works from the stacked factors (the same truncated update), and the trimming _svd forms (TiesSvd,
    /// DareLinearSvd, DareTiesSvd, MagnitudePruneSvd, and the mixed-rank fallbacks of Ties, Dare and MagnitudePrune)
    /// find the rank-k result with a randomized range finder: the same trimmed combination, its leading subspace
    /// approximated (the error is measured in docs/benchmarks.md); with it they are PEFT-exact.
    /// </summary>
    public bool DenseSvd { get; init; }

    /// <summary>Told what the merge decided: fallbacks, modules missing from some adapters, the DARE seed.</summary>
    public Action<string>? Verbose { get; init; }

    /// <summary>Called before each module.</summary>
    public Action<MergeProgress>? Progress { get; init; }

    /// <summary>Checked between modules.</summary>
    public CancellationToken CancellationToken { get; init; }
}
