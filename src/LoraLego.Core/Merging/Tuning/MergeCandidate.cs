using System.Globalization;
using System.Text.Json.Nodes;

namespace LoraLego.Core.Merging.Tuning;

/// <summary>
/// One point of a merge search: the method and its settings, one weight per adapter, and optionally a multiplier per
/// module and adapter (learned layer-wise coefficients, AdaMerging arXiv 2310.02575) applied to each adapter's update
/// before the method merges them.
/// </summary>
public sealed record MergeCandidate
{
    /// <summary>The PEFT method, or null for LoRA-LEGO.</summary>
    public MergeMethod? Method { get; init; }

    /// <summary>The LoRA-LEGO options; read only when <see cref="Method"/> is null.</summary>
    public LegoOptions Lego { get; init; } = DefaultMerge.Lego;

    /// <summary>The fraction kept by the trimming PEFT methods (ties, dare, magnitude_prune); null for the others.</summary>
    public double? Density { get; init; }

    /// <summary>One weight per adapter, in input order, as Merge-Lora's -Weight.</summary>
    public required IReadOnlyList<double> Weights { get; init; }

    /// <summary>Per module key, one multiplier per adapter of that adapter's update there; null: 1 everywhere.</summary>
    public IReadOnlyDictionary<string, double[]>? ModuleScales { get; init; }

    /// <summary>The method's name as Merge-Lora's -Method takes it.</summary>
    public string MethodName => Method?.ToString() ?? "Lego";

    /// <summary>The default merge (<see cref="DefaultMerge"/>) of <paramref name="count"/> adapters.</summary>
    public static MergeCandidate Default(int count) => new()
    {
        Method = DefaultMerge.Method,
        Lego = DefaultMerge.Lego,
        Density = DefaultMerge.Method is { } m && m.Recipe().NeedsDensity ? StartDensity : null,
        Weights = Enumerable.Repeat(DefaultMerge.Weight, count).ToArray(),
    };

    /// <summary>Where a search of a trimming method starts its density (the value of PEFT's examples).</summary>
    public const double StartDensity = 0.5;

    /// <summary>A one-line account of the settings, for the search history and -Verbose.</summary>
    public string Describe()
    {
        var parts = new List<string> { MethodName };
        if (Method is null)
            parts.Add($"k={(Lego.Clustering.K?.ToString(CultureInfo.InvariantCulture) ?? "every unit")} target={Lego.Target} " +
                $"param_rw={(Lego.ParameterReweight ? "on" : "off")} out_rw={(Lego.OutputReweight ? "on" : "off")}");
        if (Density is { } d)
            parts.Add($"density={d.ToString("G3", CultureInfo.InvariantCulture)}");
        parts.Add("w=[" + string.Join(", ", Weights.Select(w => w.ToString("F3", CultureInfo.InvariantCulture))) + "]");
        if (ModuleScales is { } scales)
        {
            var all = scales.Values.SelectMany(v => v).ToList();
            parts.Add($"module scales {all.Min().ToString("F2", CultureInfo.InvariantCulture)}..{all.Max().ToString("F2", CultureInfo.InvariantCulture)} over {scales.Count} modules");
        }
        return string.Join(" ", parts);
    }

    /// <summary>The candidate as JSON, for the merged adapter's provenance.</summary>
    public JsonObject ToJson(IReadOnlyList<string> adapterNames)
    {
        var json = new JsonObject
        {
            ["method"] = Method?.PeftName() ?? "lego",
            ["weights"] = new JsonObject(adapterNames.Select((n, i) => KeyValuePair.Create(n, (JsonNode?)JsonValue.Create(Weights[i])))),
        };
        if (Density is { } d)
            json["density"] = d;
        if (ModuleScales is { } scales)
            json["module_scales"] = new JsonObject(scales.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)new JsonArray(p.Value.Select(v => (JsonNode)JsonValue.Create(v)).ToArray()))));
        return json;
    }
}
