using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LoraLego.Core.Models;

/// <summary>
/// Typed reads of config.json fields: absent or null gives null, a value of the wrong JSON kind
/// is an error naming the field, because a silently defaulted hidden size gives garbage logits.
/// </summary>
internal static class ConfigJson
{
    public static double? Number(JsonObject? json, string name, string path) => json?[name] switch
    {
        null => null,
        // Parsed from text, not GetValue<double>, which fails on a value built from an int in code.
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture),
        var other => throw WrongKind(path, name, "a number", other),
    };

    public static int? Integer(JsonObject? json, string name, string path) =>
        Number(json, name, path) is double d
            ? d == Math.Floor(d) && d >= 0 && d <= int.MaxValue ? (int)d : throw WrongKind(path, name, "a non-negative integer", json![name])
            : null;

    public static string? Text(JsonObject? json, string name, string path) => json?[name] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        var other => throw WrongKind(path, name, "a string", other),
    };

    public static bool? Flag(JsonObject? json, string name, string path) => json?[name] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        var other => throw WrongKind(path, name, "true or false", other),
    };

    private static LoraException WrongKind(string path, string name, string expected, JsonNode? found) =>
        new(LoraErrorKind.InvalidData, path, $"'{name}' should be {expected}, not {found?.ToJsonString()}");
}
