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
        var warnings = new List<string>();
        foreach (var (field, expected) in new[] { ("r", "a positive integer"), ("lora_alpha", "a number") })
            if (json.TryGetPropertyValue(field, out var value) && value is null)
                throw FieldError(field, null, expected);
        R = ReadRank(json["r"], "r") ?? 8;
        LoraAlpha = ReadFinite(json["lora_alpha"], "lora_alpha") ?? 8;
        UseRsLora = ReadBool(json, "use_rslora", warnings);
        UseDora = ReadBool(json, "use_dora", warnings);
        FanInFanOut = ReadBool(json, "fan_in_fan_out", warnings);
        PeftType = ReadString(json["peft_type"], "peft_type") ?? "LORA";
        BaseModel = ReadString(json["base_model_name_or_path"], "base_model_name_or_path");
        TargetModules = json["target_modules"] switch
        {
            null => [],
            JsonArray arr => arr.Select((n, i) => ReadString(n, $"target_modules[{i}]") ?? throw FieldError($"target_modules[{i}]", n, "a module name")).ToArray(),
            JsonValue v when v.GetValueKind() == JsonValueKind.String => [v.GetValue<string>()],
            var other => throw FieldError("target_modules", other, "a list of module names or one regex string"),
        };
        RankPattern = ReadPattern(json, "rank_pattern", (n, field) => ReadRank(n, field) ?? throw FieldError(field, n, "a positive integer"));
        AlphaPattern = ReadPattern(json, "alpha_pattern", (n, field) => ReadFinite(n, field) ?? throw FieldError(field, n, "a number"));
        Warnings = warnings;
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

    /// <summary>
    /// Values of another JSON type that PEFT itself reads the same way and that were converted
    /// (a flag written as 0 or 1), each a sentence naming the field; a host shows them as warnings.
    /// </summary>
    public IReadOnlyList<string> Warnings { get; }

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
            // A key written twice is only found when the object is first enumerated.
            _ = obj.Count;
        }
        catch (ArgumentException e)
        {
            throw new LoraException(LoraErrorKind.InvalidData, path, "adapter_config.json has a key written twice", e);
        }
        catch (InvalidOperationException e)
        {
            // Found by fuzzing: a key with an escaped half of a surrogate pair.
            throw new LoraException(LoraErrorKind.InvalidData, path, $"adapter_config.json has a key that is not valid text ({e.Message})", e);
        }
        try
        {
            return new AdapterConfig(obj);
        }
        catch (LoraException e) when (e.Target is null)
        {
            throw e.Retarget(path);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException)
        {
            throw new LoraException(LoraErrorKind.InvalidData, path, $"adapter_config.json has a field of the wrong type ({e.Message})", e, ConfigFieldTypeId);
        }
    }

    /// <summary>The error id of a config field of the wrong JSON type or out of range.</summary>
    public const string ConfigFieldTypeId = "ConfigFieldType";

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

    // A field's JSON type is checked, not guessed: "lora_alpha": "16" read as the default 8 would
    // halve the update without a word. PEFT itself does not convert either (its dataclass takes the
    // value as it is, so Python would fail on the string, or take any non-empty string as true).
    private static LoraException FieldError(string field, JsonNode? node, string expected)
    {
        string got = node switch
        {
            null => "null",
            JsonValue v when v.GetValueKind() == JsonValueKind.String => $"the string {Shorten(node.ToJsonString())}",
            JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => $"the boolean {node.ToJsonString()}",
            JsonValue => Shorten(node.ToJsonString()),
            JsonArray => "a list",
            _ => "an object",
        };
        string hint = node is JsonValue s && s.GetValueKind() == JsonValueKind.String && expected is "a number" or "a positive integer"
            ? $" (write it without quotes: \"{field}\": {Shorten(s.GetValue<string>())})" : "";
        return new LoraException(LoraErrorKind.InvalidData, null, $"field '{field}' is {got}, but PEFT needs {expected}{hint}", errorId: ConfigFieldTypeId);
    }

    private static string Shorten(string text) => text.Length > 40 ? text[..40] + "..." : text;

    // A rank: a positive whole number (8 and 8.0 alike); null when absent.
    private static int? ReadRank(JsonNode? node, string field)
    {
        if (node is null)
            return null;
        double? d = ReadNumber(node);
        if (d is not { } v || v != Math.Floor(v) || v < 1 || v > int.MaxValue)
            throw FieldError(field, node, "a positive integer");
        return (int)v;
    }

    private static double? ReadFinite(JsonNode? node, string field)
    {
        if (node is null)
            return null;
        return ReadNumber(node) is { } d && double.IsFinite(d) ? d : throw FieldError(field, node, "a number");
    }

    private static string? ReadString(JsonNode? node, string field) => node switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => throw FieldError(field, node, "a string"),
    };

    // A flag: true or false; null or absent is false, as in PEFT. 0 and 1 are what Python reads
    // as false and true, so they are taken with a warning; anything else is an error.
    private static bool ReadBool(JsonObject json, string field, List<string> warnings)
    {
        var node = json[field];
        switch (node?.GetValueKind())
        {
            case null or JsonValueKind.Null or JsonValueKind.False:
                return false;
            case JsonValueKind.True:
                return true;
            case JsonValueKind.Number when ReadNumber(node) is 0.0 or 1.0:
                bool value = ReadNumber(node) == 1.0;
                warnings.Add($"field '{field}' is the number {node.ToJsonString()}, read as {(value ? "true" : "false")} as PEFT reads it; write \"{field}\": {(value ? "true" : "false")}");
                return value;
            default:
                throw FieldError(field, node, "true or false");
        }
    }

    // Parsed from the JSON text because a value built in memory holds an int or a double, and
    // GetValue<double> refuses an int.
    private static double? ReadNumber(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture) : null;

    private static IReadOnlyList<KeyValuePair<string, double>> ReadPattern(JsonObject json, string name, Func<JsonNode?, string, double> read) => json[name] switch
    {
        null => [],
        JsonObject obj => obj.Select(p => KeyValuePair.Create(p.Key, read(p.Value, $"{name}.{p.Key}"))).ToList(),
        var other => throw FieldError(name, other, "an object of module patterns"),
    };
}
