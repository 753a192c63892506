using LoraLego.Core.Compute;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;

namespace LoraLego.Core.Recipes;

/// <summary>One adapter a recipe document merges: a folder (or an earlier document's result, by name) with its parameters.</summary>
/// <param name="Source">The path or the earlier result's name, as written.</param>
/// <param name="Position">file:line:column of the source, for errors.</param>
/// <param name="Name">The name the adapter takes in the merge; null for its folder's name.</param>
public sealed record RecipeAdapter(string Source, string Position, string? Name, RecipeValue? Weight, RecipeValue? Density);

/// <summary>
/// One merge of a recipe (one YAML document): mergekit's schema with <c>adapter:</c> for <c>model:</c>. Parsed and
/// checked by <see cref="RecipeReader"/>; nothing here has touched a file.
/// </summary>
public sealed record RecipeDocument
{
    /// <summary>file:line:column of the document's start.</summary>
    public required string Position { get; init; }

    /// <summary>Lego, or the PEFT method (by PEFT's name in the recipe).</summary>
    public required MergeMethod? Method { get; init; }

    public required string MethodPosition { get; init; }

    /// <summary>The result's name, by which later documents may merge it.</summary>
    public required string Name { get; init; }

    public required IReadOnlyList<RecipeAdapter> Adapters { get; init; }

    /// <summary>Top-level weight and density: the default of every adapter that names none.</summary>
    public RecipeValue? Weight { get; init; }

    public RecipeValue? Density { get; init; }

    public int? Rank { get; init; }

    public MajoritySign? MajoritySign { get; init; }

    public double? Clamp { get; init; }

    public long? Seed { get; init; }

    public ComputeDevice Device { get; init; } = ComputeDevice.Auto;

    /// <summary>Lego's options (target, reweightings, norm, space, k-means settings); null for the PEFT methods.</summary>
    public LegoOptions? Lego { get; init; }

    /// <summary>Where the result is exported; null keeps it in memory (a step for later documents, or the cmdlet's output).</summary>
    public string? OutputPath { get; init; }

    public string? OutputPosition { get; init; }

    /// <summary>The element type the result is written as; null keeps the merge's own.</summary>
    public SafetensorsDType? DType { get; init; }

    public bool IsLego => Method is null;
}
