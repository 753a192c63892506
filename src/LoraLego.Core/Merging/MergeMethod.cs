namespace LoraLego.Core.Merging;

/// <summary>The combination types of Hugging Face PEFT's add_weighted_adapter.</summary>
public enum MergeMethod
{
    /// <summary>
    /// PEFT "linear": the A's and the B's are summed separately, each adapter's pair scaled by sqrt(weight * scaling).
    /// Surprising: the result (sum_i c_i B_i)(sum_i c_i A_i) has cross terms, so it is not sum_i weight_i dW_i; needs equal ranks.
    /// </summary>
    Linear,

    /// <summary>
    /// PEFT "cat": the A's (each times weight * scaling) and the B's are concatenated; rank = sum of the ranks.
    /// The update is exactly sum_i weight_i dW_i, at the cost of a larger rank.
    /// </summary>
    Cat,

    /// <summary>
    /// PEFT "svd": sum_i weight_i dW_i, cut to Rank by a truncated SVD (U*S into B, Vh into A), optionally clamped.
    /// LoraLego computes it from the stacked factors, without forming the dense out x in matrix.
    /// </summary>
    Svd,

    /// <summary>
    /// PEFT "ties" on the A's and the B's separately: keep the Density largest entries of each, elect a sign per entry,
    /// average the entries that agree with it. Needs equal ranks; over mixed ranks LoraLego runs TiesSvd instead.
    /// </summary>
    Ties,

    /// <summary>
    /// PEFT "ties_svd": TIES (trim each dense update dW_i to Density, elect signs, average the weighted entries that agree)
    /// then a truncated SVD to Rank. Surprising: an average, so two agreeing adapters do not add up.
    /// </summary>
    TiesSvd,

    /// <summary>
    /// PEFT "dare_linear" on the A's and the B's separately: drop entries at random (keeping Density, rescaled by 1/Density),
    /// then the weighted sum as in Linear. Needs equal ranks; over mixed ranks LoraLego runs DareLinearSvd instead.
    /// </summary>
    DareLinear,

    /// <summary>
    /// PEFT "dare_ties" on the A's and the B's separately: random drop with rescale, then TIES sign election and averaging.
    /// Needs equal ranks; over mixed ranks LoraLego runs DareTiesSvd instead.
    /// </summary>
    DareTies,

    /// <summary>
    /// PEFT "dare_linear_svd": random drop with rescale (1/Density) on each dense update dW_i, weighted sum, then a
    /// truncated SVD to Rank.
    /// </summary>
    DareLinearSvd,

    /// <summary>
    /// PEFT "dare_ties_svd": random drop with rescale on the dense updates, TIES sign election and averaging,
    /// then a truncated SVD to Rank.
    /// </summary>
    DareTiesSvd,

    /// <summary>
    /// PEFT "magnitude_prune" on the A's and the B's separately: keep the Density largest entries of each, then the weighted
    /// sum as in Linear. Needs equal ranks; over mixed ranks LoraLego runs MagnitudePruneSvd instead.
    /// </summary>
    MagnitudePrune,

    /// <summary>
    /// PEFT "magnitude_prune_svd": keep the Density largest entries of each dense update, weighted sum, then a truncated SVD to Rank.
    /// </summary>
    MagnitudePruneSvd,
}

/// <summary>How the elected sign of an entry is chosen in the TIES methods (PEFT's majority_sign_method).</summary>
public enum MajoritySign
{
    /// <summary>The sign of the sum of the (trimmed, unweighted) values.</summary>
    Total,

    /// <summary>The sign held by more adapters, positive on a tie.</summary>
    Frequency,
}

/// <summary>What each method does, in the terms of its building blocks, and PEFT's names for the methods.</summary>
public static class MergeMethods
{
    private static readonly (MergeMethod Method, string PeftName)[] Names =
    [
        (MergeMethod.Linear, "linear"),
        (MergeMethod.Cat, "cat"),
        (MergeMethod.Svd, "svd"),
        (MergeMethod.Ties, "ties"),
        (MergeMethod.TiesSvd, "ties_svd"),
        (MergeMethod.DareLinear, "dare_linear"),
        (MergeMethod.DareTies, "dare_ties"),
        (MergeMethod.DareLinearSvd, "dare_linear_svd"),
        (MergeMethod.DareTiesSvd, "dare_ties_svd"),
        (MergeMethod.MagnitudePrune, "magnitude_prune"),
        (MergeMethod.MagnitudePruneSvd, "magnitude_prune_svd"),
    ];

    /// <summary>PEFT's combination_type for <paramref name="method"/>, e.g. "ties_svd".</summary>
    public static string PeftName(this MergeMethod method) => Names.First(n => n.Method == method).PeftName;

    /// <summary>The method for a PEFT combination_type (case-insensitive); throws InvalidArgument for an unknown name.</summary>
    public static MergeMethod FromPeftName(string name) =>
        Names.FirstOrDefault(n => string.Equals(n.PeftName, name, StringComparison.OrdinalIgnoreCase)) is { PeftName: not null } hit
            ? hit.Method
            : throw new LoraException(LoraErrorKind.InvalidArgument, null,
                $"unknown combination type '{name}'; expected one of {string.Join(", ", Names.Select(n => n.PeftName))}");

    internal static MergeRecipe Recipe(this MergeMethod method) => method switch
    {
        MergeMethod.Linear => new(MergeForm.Factorwise, Trimming.None, false),
        MergeMethod.Cat => new(MergeForm.Concatenate, Trimming.None, false),
        MergeMethod.Svd => new(MergeForm.DenseSvd, Trimming.None, false),
        MergeMethod.Ties => new(MergeForm.Factorwise, Trimming.Magnitude, true),
        MergeMethod.TiesSvd => new(MergeForm.DenseSvd, Trimming.Magnitude, true),
        MergeMethod.DareLinear => new(MergeForm.Factorwise, Trimming.RandomDrop, false),
        MergeMethod.DareTies => new(MergeForm.Factorwise, Trimming.RandomDrop, true),
        MergeMethod.DareLinearSvd => new(MergeForm.DenseSvd, Trimming.RandomDrop, false),
        MergeMethod.DareTiesSvd => new(MergeForm.DenseSvd, Trimming.RandomDrop, true),
        MergeMethod.MagnitudePrune => new(MergeForm.Factorwise, Trimming.Magnitude, false),
        MergeMethod.MagnitudePruneSvd => new(MergeForm.DenseSvd, Trimming.Magnitude, false),
        _ => throw new LoraException(LoraErrorKind.InvalidArgument, null, $"unknown merge method {method}"),
    };

    /// <summary>The dense-update (_svd) method that computes the same trimming and combination as a factor-wise one.</summary>
    internal static MergeMethod DenseCounterpart(this MergeMethod method) => method switch
    {
        MergeMethod.Ties => MergeMethod.TiesSvd,
        MergeMethod.DareLinear => MergeMethod.DareLinearSvd,
        MergeMethod.DareTies => MergeMethod.DareTiesSvd,
        MergeMethod.MagnitudePrune => MergeMethod.MagnitudePruneSvd,
        _ => method,
    };
}

/// <summary>Where a method's combination acts.</summary>
internal enum MergeForm
{
    /// <summary>On the A's and on the B's separately, each with the factor sqrt(weight * scaling); needs equal ranks.</summary>
    Factorwise,

    /// <summary>A's and B's stacked along the rank.</summary>
    Concatenate,

    /// <summary>On the dense updates, ending in a truncated SVD.</summary>
    DenseSvd,
}

/// <summary>How entries are removed before combining.</summary>
internal enum Trimming
{
    None,
    Magnitude,
    RandomDrop,
}

internal readonly record struct MergeRecipe(MergeForm Form, Trimming Trimming, bool ElectsSign)
{
    public bool NeedsDensity => Trimming != Trimming.None;
}
