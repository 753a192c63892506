using System.Text.Json.Nodes;
using LoraLego.Core.Adapters;
using LoraLego.Core.Merging;

namespace LoraLego.Core.Recipes;

/// <summary>A document's result: the merged adapter, and where the recipe exports it (null: nowhere).</summary>
public sealed record RecipeResult(RecipeDocument Document, LoraAdapter Adapter);

/// <summary>
/// Runs a checked recipe, document by document; a document may merge earlier results by name. Modules whose
/// parameters differ (gradients, filters) are merged group by group, each group in one call of the same merge
/// Merge-Lora makes, so a recipe without per-module values is exactly that call. Nothing is written here.
/// </summary>
public static class RecipeRunner
{
    public static IReadOnlyList<RecipeResult> Run(RecipePlan plan, Action<string>? verbose = null, Action<MergeProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var results = new List<RecipeResult>();
        var byName = new Dictionary<string, LoraAdapter>(StringComparer.Ordinal);
        for (int index = 0; index < plan.Merges.Count; index++)
        {
            var merge = plan.Merges[index];
            var adapters = merge.Inputs.Select(i => i.Adapter ?? Renamed(byName[i.Entry.Source], i.Entry.Name)).ToList();
            verbose?.Invoke($"{merge.Document.Name}: {(merge.Document.IsLego ? "lego" : merge.Document.Method!.Value.PeftName())} of {string.Join(", ", adapters.Select(a => a.Name))}" +
                (merge.Groups.Count > 1 ? $", in {merge.Groups.Count} groups of modules with their own parameters" : ""));
            var merged = Merge(merge, adapters, verbose, progress, cancellationToken);
            var record = (JsonObject)(merged.Provenance?.DeepClone() ?? new JsonObject());
            if (merge.Groups.Count > 1)
                record["per_module_parameters"] = "weights and densities differ per module; the recipe gives them";
            record["recipe"] = plan.Text;
            record["recipe_document"] = index + 1;
            var result = new LoraAdapter(merged.Name, null, merged.Format, merged.Config, merged.Modules, merged.ExtraTensors, record);
            byName[merge.Document.Name] = result;
            results.Add(new RecipeResult(merge.Document, result));
        }
        return results;
    }

    /// <summary>The PEFT merge's options for a document (the seed only where the method draws at random, as Merge-Lora takes it).</summary>
    internal static MergeOptions Options(RecipeDocument document, Action<string>? verbose = null, Action<MergeProgress>? progress = null,
        CancellationToken cancellationToken = default) => new()
    {
        Name = document.Name,
        Rank = document.Rank,
        MajoritySign = document.MajoritySign,
        Clamp = document.Clamp,
        Seed = document.Method is { } m && m.Recipe().Trimming == Trimming.RandomDrop ? document.Seed : null,
        Device = document.Device,
        Verbose = verbose,
        Progress = progress,
        CancellationToken = cancellationToken,
    };

    private static LoraAdapter Merge(PlannedMerge merge, IReadOnlyList<LoraAdapter> adapters, Action<string>? verbose, Action<MergeProgress>? progress,
        CancellationToken cancellationToken)
    {
        var document = merge.Document;
        var parts = new List<LoraAdapter>();
        foreach (var group in merge.Groups)
        {
            var keys = merge.Groups.Count == 1 ? null : group.ModuleKeys.ToHashSet(StringComparer.Ordinal);
            var inputs = adapters.Select((a, i) => new MergeInput(keys is null ? a : a.WithModules(keys.Contains), group.Weights[i], group.Densities[i])).ToList();
            parts.Add(document.IsLego
                ? LegoMerge.Merge(inputs, document.Lego, document.Name, verbose, progress, cancellationToken)
                : StandardMerge.Merge(inputs, document.Method!.Value, Options(document, verbose, progress, cancellationToken)));
        }
        if (parts.Count == 1)
            return parts[0];
        var modules = parts.SelectMany(p => p.Modules).ToDictionary(m => m.Key, StringComparer.Ordinal);
        var ordered = MergeInput.ModuleKeys(adapters.Select(a => new MergeInput(a))).Select(k => modules[k]).ToList();
        return LoraAdapter.Create(document.Name, adapters[0].Config, ordered, parts[0].Provenance);
    }

    private static LoraAdapter Renamed(LoraAdapter adapter, string? name) =>
        name is null ? adapter : new LoraAdapter(name, adapter.Path, adapter.Format, adapter.Config, adapter.Modules, adapter.ExtraTensors, adapter.Provenance);
}
