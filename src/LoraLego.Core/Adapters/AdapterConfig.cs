using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace LoraLego.Core.Adapters;

/// <summary>
/// A PEFT adapter_config.json: the fields that change the mathematics, read out, and the whole
/// document kept so a re-export preserves fields LoraLego does not know.
/// </summary>
public sealed class AdapterConfig
{
    public AdapterConfig(JsonObject json)
    {
        Json = json;
        R = ReadInt(json, "r") ?? 8;
        LoraAlpha = ReadDouble(json, "lora_alpha") ?? 8;
        UseRsLora = json["use_rslora"]?.GetValueKind() == JsonValueKind.True;
        UseDora = json["use_dora"]?.GetValueKind() == JsonValueKind.True;
        FanInFanOut = json["fan_in_fan_out"]?.GetValueKind() == JsonValueKind.True;
        PeftType = json["peft_type"]?.GetValueKind() == JsonValueKind.String ? json["peft_type"]!.GetValue<string>() : "LORA";
        BaseModel = json["base_model_name_or_path"]?.GetValueKind() == JsonValueKind.String ? json["base_model_name_or_path"]!.GetValue<string>() : null;
        TargetModules = json["target_modules"] switch
        {
            JsonArray arr => arr.Select(n => n?.ToString() ?? "").ToArray(),
            JsonValue v when v.GetValueKind() == JsonValueKind.String => [v.GetValue<string>()],
            _ => [],
        };
        RankPattern = ReadPattern(json, "rank_pattern", n => (double)(ReadNumber(n) ?? R));
        AlphaPattern = ReadPattern(json, "alpha_pattern", n => ReadNumber(n) ?? LoraAlpha);
    }

    /// <summary>A minimal LoRA config, for adapters built from parts whose source configs are not at hand.</summary>
    public static AdapterConfig Bare() => new(new JsonObject { ["peft_type"] = "LORA" });

    /// <summary>The config as read (or as built for a computed adapter).</summary>
    public JsonObject Json { get; }

    public int R { get; }

    public double LoraAlpha { get; }

    public bool UseRsLora { get; }

    public bool UseDora { get; }

    public bool FanInFanOut { get; }

    public string PeftType { get; }

    public string? BaseModel { get; }

    public string[] TargetModules { get; }

    public IReadOnlyList<KeyValuePair<string, double>> RankPattern { get; }

    public IReadOnlyList<KeyValuePair<string, double>> AlphaPattern { get; }

    public static AdapterConfig Parse(string text, string path)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(text);
        }
        catch (JsonException e)
        {
            throw new LoraException(LoraErrorKind.InvalidData, path, $"adapter_config.json is not valid JSON ({e.Message})", e);
        }
        if (node is not JsonObject obj)
            throw new LoraException(LoraErrorKind.InvalidData, path, "adapter_config.json is not a JSON object");
        try
        {
            return new AdapterConfig(obj);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new LoraException(LoraErrorKind.InvalidData, path, $"adapter_config.json has a field of the wrong type ({e.Message})", e);
        }
    }

    /// <summary>The rank PEFT gives a module: its rank_pattern entry, else r.</summary>
    public int RankFor(string moduleKey) => (int)(MatchPattern(RankPattern, moduleKey) ?? R);

    /// <summary>The alpha PEFT gives a module: its alpha_pattern entry, else lora_alpha.</summary>
    public double AlphaFor(string moduleKey) => MatchPattern(AlphaPattern, moduleKey) ?? LoraAlpha;

    // PEFT matches a pattern key against a module name as a regex anchored at the end and at a
    // dot boundary, exact names winning.
    internal static double? MatchPattern(IReadOnlyList<KeyValuePair<string, double>> pattern, string moduleKey)
    {
        foreach (var (key, value) in pattern)
            if (key == moduleKey)
                return value;
        foreach (var (key, value) in pattern)
        {
            try
            {
                if (Regex.IsMatch(moduleKey, $"^(.*\\.)?({key})$"))
                    return value;
            }
            catch (ArgumentException)
            {
                // A key that is not a valid regex can still match literally, checked above.
            }
        }
        return null;
    }

    private static int? ReadInt(JsonObject json, string name) => ReadNumber(json[name]) is double d ? (int)d : null;

    private static double? ReadDouble(JsonObject json, string name) => ReadNumber(json[name]);

    // Parsed from the JSON text because a value built in memory holds an int or a double, and
    // GetValue<double> refuses an int.
    private static double? ReadNumber(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture) : null;

    private static IReadOnlyList<KeyValuePair<string, double>> ReadPattern(JsonObject json, string name, Func<JsonNode?, double> read) =>
        json[name] is JsonObject obj ? obj.Select(p => KeyValuePair.Create(p.Key, read(p.Value))).ToList() : [];
}
