using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraLego.Core.Adapters;
using YamlDotNet.RepresentationModel;

namespace LoraLego.Core.Recipes;

/// <summary>
/// The recipe of a merge made interactively, from its provenance: running it (<see cref="RecipePlan"/>,
/// <see cref="RecipeRunner"/>) repeats the merge. A merge that a recipe made gives that recipe back.
/// </summary>
public static class RecipeWriter
{
    /// <exception cref="LoraException">InvalidArgument when the adapter has no provenance, or its inputs were not read
    /// from files (a recipe names folders), or the merge used an option recipes do not have.</exception>
    public static string Write(LoraAdapter adapter)
    {
        var record = adapter.Provenance
            ?? throw Refusal(adapter, "has no provenance: only merges made by LoraLego record how they were made");
        if (adapter.Recipe is { } recipe)
            return recipe;
        if (record["module_filter"] is JsonValue)
            throw Refusal(adapter, "was merged with -Module; recipes merge every module (filter weights per module instead)");
        string method = Text(record["method"]) ?? throw Refusal(adapter, "its provenance names no method");
        var models = new YamlSequenceNode();
        foreach (var input in record["inputs"]?.AsArray() ?? [])
            models.Add(Model(adapter, input!.AsObject()));
        var document = new YamlMappingNode { { "merge_method", method }, { "models", models } };
        var parameters = Flow(method == "lego" ? LegoParameters(record) : PeftParameters(record));
        if (parameters.Children.Count > 0)
            document.Add("parameters", parameters);
        if (record["seed"] is JsonValue seed)
            document.Add("seed", seed.ToJsonString());
        var stream = new YamlStream(new YamlDocument(document));
        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        stream.Save(writer, assignAnchors: false);
        return writer.ToString().Replace("\r\n", "\n", StringComparison.Ordinal).TrimEnd('\n', '.', ' ').TrimEnd() + "\n";
    }

    private static YamlMappingNode Model(LoraAdapter adapter, JsonObject input)
    {
        string name = Text(input["adapter"]) ?? "?";
        string path = Text(input["path"])
            ?? throw Refusal(adapter, $"has input '{name}', which was not read from a folder; export it and merge the exported folder to get a recipe");
        var model = new YamlMappingNode { { "adapter", path } };
        if (!string.Equals(Path.GetFileName(Path.TrimEndingDirectorySeparator(path)), name, StringComparison.Ordinal))
            model.Add("name", name);
        var parameters = Flow([("weight", input["weight"]), ("density", input["density"])]);
        if (parameters.Children.Count > 0)
            model.Add("parameters", parameters);
        return model;
    }

    private static (string, JsonNode?)[] LegoParameters(JsonObject record) =>
    [
        ("rank", record["k"] is JsonValue k && k.GetValueKind() == JsonValueKind.Number ? k : null),
        ("target", record["target"]),
        ("parameter_reweight", record["parameter_reweight"]),
        ("output_reweight", record["output_reweight"]),
        ("norm", record["norm"]),
        ("space", record["clustering_space"]),
        ("restarts", record["restarts"]),
        ("max_iterations", record["max_iterations"]),
        ("tolerance", record["tolerance"]),
    ];

    private static (string, JsonNode?)[] PeftParameters(JsonObject record) =>
        [("rank", record["rank"]), ("density", record["density"]), ("majority_sign_method", record["majority_sign_method"]), ("clamp", record["clamp"])];

    private static YamlMappingNode Flow(IEnumerable<(string Key, JsonNode? Value)> pairs)
    {
        var map = new YamlMappingNode { Style = YamlDotNet.Core.Events.MappingStyle.Flow };
        foreach (var (key, value) in pairs)
            if (value is JsonValue v)
                map.Add(key, v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : v.ToJsonString());
        return map;
    }

    private static string? Text(JsonNode? node) => node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    private static LoraException Refusal(LoraAdapter adapter, string message) => new(LoraErrorKind.InvalidArgument, adapter.Name, message);
}
