using LoraLego.Core.Compute;
using LoraLego.Core.Models;

namespace LoraLego.Core.Merging.Tuning;

/// <summary>The choices of a merge search (<see cref="MergeSearch"/>); every one is recorded in the merged adapter's provenance.</summary>
public sealed record MergeSearchOptions
{
    /// <summary>
    /// The methods searched, null meaning LoRA-LEGO; each starts from its plain form (LoRA-LEGO's defaults at weight 1,
    /// a PEFT sum at weights 1/N, a TIES mean at weight 1). Default: the default merge and Cat, the best PEFT merge of
    /// the skillbench benchmark.
    /// </summary>
    public IReadOnlyList<MergeMethod?> Methods { get; init; } = [DefaultMerge.Method, MergeMethod.Cat];

    /// <summary>Evaluations in all: the starting points, the settings and weights tried, and one per epoch of module scales.</summary>
    public int Budget { get; init; } = 40;

    /// <summary>Seeds the split, the weight search, the shuffling of the gradient stage and the DARE drops.</summary>
    public int Seed { get; init; }

    /// <summary>The share of rows held out to choose the result by, so that it is not fitted to the tuning rows' noise.</summary>
    public double ValidationFraction { get; init; } = 0.2;

    /// <summary>LoraHub's L1 penalty on the weights (arXiv 2307.13269 uses 0.05): the weight search minimises loss + L1 * sum |w_i|.</summary>
    public double L1 { get; init; } = 0.05;

    /// <summary>The range LoraHub keeps each weight in, [-MaxWeight, MaxWeight].</summary>
    public double MaxWeight { get; init; } = 1.5;

    /// <summary>Epochs of the gradient stage (per-module scales, AdaMerging); 0 leaves it out.</summary>
    public int Epochs { get; init; } = 2;

    /// <summary>Adam's learning rate for the module scales, which start at 1.</summary>
    public double LearningRate { get; init; } = 0.05;

    /// <summary>Rows per forward pass, in evaluations and in the gradient stage's steps.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>
    /// Where the search runs: candidates are scored and module scales trained where the model is, so Auto accepts the
    /// model's device and Cpu or Cuda must match it.
    /// </summary>
    public ComputeDevice Device { get; init; } = ComputeDevice.Auto;

    /// <summary>The merged adapter's name.</summary>
    public string Name { get; init; } = "optimized";

    internal void Validate(BaseModel model, int adapterCount)
    {
        if (adapterCount < 2)
            throw Invalid($"a merge search needs two or more adapters, not {adapterCount}");
        if (Methods.Count == 0)
            throw Invalid("no method to search");
        if (Budget < Methods.Distinct().Count() + 1)
            throw Invalid($"a budget of {Budget} evaluations does not cover the {Methods.Distinct().Count()} starting point(s) and one step more");
        if (Epochs < 0 || BatchSize < 1)
            throw Invalid($"Epochs must be 0 or more and BatchSize at least 1, not {Epochs} and {BatchSize}");
        if (!double.IsFinite(LearningRate) || LearningRate <= 0)
            throw Invalid($"LearningRate must be a positive number, not {LearningRate}");
        if (!double.IsFinite(L1) || L1 < 0)
            throw Invalid($"L1 must be 0 or more, not {L1}");
        if (!double.IsFinite(MaxWeight) || MaxWeight <= 0)
            throw Invalid($"MaxWeight must be a positive number, not {MaxWeight}");
        DeviceSelector.RequireModelDevice(Device, model.Device, "a merge search scores its candidates", model.Path);
        if (model.Adapters.Count > 0 || model.LinearLayers.Any(l => l.Contribution is not null))
            throw new LoraException(LoraErrorKind.InvalidArgument, model.Path,
                $"the model has adapters or a mixture attached ({string.Join(", ", model.Adapters.Select(a => a.Name))}); a merge search scores its candidates on the bare model, detach them first");
    }

    private static LoraException Invalid(string message) => new(LoraErrorKind.InvalidArgument, null, message);
}
