using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;

namespace LoraLego.Core.Recipes;

/// <summary>One document of a checked recipe: its inputs (adapters read, or earlier results by name) and its modules grouped by their parameters.</summary>
/// <param name="Inputs">Per input, the adapter read from disk, or null where it is the result of the earlier document <see cref="RecipeAdapter.Source"/>.</param>
/// <param name="Groups">Modules that share every input's weight and density, each merged in one call; one group when nothing varies per module.</param>
public sealed record PlannedMerge(RecipeDocument Document, IReadOnlyList<(RecipeAdapter Entry, LoraAdapter? Adapter)> Inputs, IReadOnlyList<ModuleGroup> Groups);

/// <summary>Modules merged with the same parameters: one weight and one density (null: none) per input, in input order.</summary>
public sealed record ModuleGroup(IReadOnlyList<string> ModuleKeys, IReadOnlyList<double> Weights, IReadOnlyList<double?> Densities);

/// <summary>
/// A recipe checked against the files it names: every adapter exists and is readable (headers only), every name
/// refers to an earlier document, every gradient fits the layers, every filter list covers every module, every
/// method takes the options given, and no output would overwrite an adapter unless forced. Nothing is merged or written.
/// </summary>
public sealed class RecipePlan
{
    private RecipePlan(string text, IReadOnlyList<PlannedMerge> merges)
    {
        Text = text;
        Merges = merges;
    }

    /// <summary>The recipe's text, recorded in every result's provenance.</summary>
    public string Text { get; }

    public IReadOnlyList<PlannedMerge> Merges { get; }

    /// <param name="text">The recipe, YAML.</param>
    /// <param name="file">How errors name the recipe (its path, or a label for inline text).</param>
    /// <param name="resolvePath">Turns a path as written into a full path (the caller's current location for relative ones).</param>
    /// <param name="force">Whether outputs may replace existing adapters.</param>
    public static RecipePlan Create(string text, string file, Func<string, string> resolvePath, bool force = false)
    {
        var documents = RecipeReader.Parse(text, file);
        var keysByName = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        var outputs = new HashSet<string>(StringComparer.Ordinal);
        var merges = new List<PlannedMerge>();
        foreach (var document in documents)
        {
            if (keysByName.ContainsKey(document.Name))
                throw new LoraException(LoraErrorKind.InvalidData, document.Position, $"an earlier document is already named '{document.Name}'; give this one another 'name'");
            var inputs = document.Adapters.Select(entry => (entry, keysByName.ContainsKey(entry.Source) ? null : Read(entry, resolvePath))).ToList();
            var keys = inputs.SelectMany(i => i.Item2?.Modules.Select(m => m.Key) ?? keysByName[i.entry.Source]).Distinct(StringComparer.Ordinal).ToList();
            var groups = Group(document, keys);
            foreach (var group in groups)
                CheckOptions(document, inputs, group);
            if (document.OutputPath is { } output)
                CheckOutput(document, resolvePath(output), force, outputs);
            keysByName[document.Name] = keys;
            merges.Add(new PlannedMerge(document, inputs, groups));
        }
        return new RecipePlan(text, merges);
    }

    private static LoraAdapter Read(RecipeAdapter entry, Func<string, string> resolvePath)
    {
        try
        {
            return PeftAdapterReader.Read(resolvePath(entry.Source), entry.Name);
        }
        catch (LoraException e)
        {
            throw new LoraException(e.Kind, entry.Position, $"adapter '{entry.Source}': {e.Message}", e);
        }
    }

    private static List<ModuleGroup> Group(RecipeDocument document, IReadOnlyList<string> keys)
    {
        int layers = keys.Select(RecipeValue.LayerOf).Max() is { } last ? last + 1 : 0;
        var values = document.Adapters.SelectMany(a => new[] { a.Weight, a.Density }).Append(document.Weight).Append(document.Density).OfType<RecipeValue>();
        foreach (var value in values)
            value.CheckGradients(layers);
        var groups = new List<ModuleGroup>();
        var byParameters = new Dictionary<string, (List<string> Keys, double[] Weights, double?[] Densities)>(StringComparer.Ordinal);
        foreach (var key in keys)
        {
            var weights = document.Adapters.Select(a => (a.Weight ?? document.Weight)?.At(key, layers) ?? 1.0).ToArray();
            var densities = document.Adapters.Select(a => (a.Density ?? document.Density)?.At(key, layers)).ToArray();
            string signature = string.Join(",", weights.Select(w => w.ToString("R"))) + "|" + string.Join(",", densities.Select(d => d?.ToString("R")));
            if (!byParameters.TryGetValue(signature, out var group))
                byParameters[signature] = group = ([], weights, densities);
            group.Keys.Add(key);
        }
        return byParameters.Values.Select(g => new ModuleGroup(g.Keys, g.Weights, g.Densities)).ToList();
    }

    // The merges' own checks, run now so that a recipe fails before its first document runs.
    private static void CheckOptions(RecipeDocument document, IReadOnlyList<(RecipeAdapter Entry, LoraAdapter? Adapter)> inputs, ModuleGroup group)
    {
        try
        {
            if (document.IsLego)
            {
                if (document.Density is not null || document.Adapters.Any(a => a.Density is not null))
                    throw new LoraException(LoraErrorKind.InvalidArgument, null, "lego does not trim entries; density applies to ties, dare and magnitude_prune methods");
                document.Lego!.Clustering.Validate();
                return;
            }
            var stand = inputs.Select((input, i) => new MergeInput(input.Adapter ?? new LoraAdapter(input.Entry.Source, null, "PEFT", AdapterConfig.Bare(), []),
                group.Weights[i], group.Densities[i])).ToList();
            StandardMerge.Validate(stand, document.Method!.Value, RecipeRunner.Options(document));
        }
        catch (LoraException e)
        {
            throw new LoraException(LoraErrorKind.InvalidData, document.MethodPosition, e.Message, e);
        }
    }

    private static void CheckOutput(RecipeDocument document, string folder, bool force, HashSet<string> outputs)
    {
        if (!outputs.Add(folder))
            throw new LoraException(LoraErrorKind.InvalidData, document.OutputPosition, $"an earlier document already writes '{folder}'");
        PeftAdapterWriter.CheckDestination(folder, force, document.OutputPosition);
    }
}
