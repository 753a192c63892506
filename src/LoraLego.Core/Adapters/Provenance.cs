using System.Text.Json;
using System.Text.Json.Nodes;
using LoraLego.Core.Formats;

namespace LoraLego.Core.Adapters;

/// <summary>
/// Where a computed adapter came from: one JSON record (method, inputs with names, paths and hashes, the options,
/// and the recipe when one ran it), stored as one string in the safetensors header's __metadata__ under
/// <see cref="MetadataKey"/>. Kept out of adapter_config.json because PEFT warns about every key it does not know.
/// </summary>
public static class Provenance
{
    /// <summary>The __metadata__ key of the record (safetensors metadata values are strings: the record is JSON text).</summary>
    public const string MetadataKey = "loralego.provenance";

    /// <summary>Where LoraLego 0.x kept the record, inside adapter_config.json; read and moved, never written.</summary>
    public const string LegacyConfigKey = "loralego";

    /// <summary>
    /// One input of a merge as the record names it: name, weight, the format it exports to by default
    /// (<see cref="LoraFormats.DefaultFor"/>; a merge of inputs of one format exports to it) and the file it
    /// was read from with its SHA-256.
    /// </summary>
    public static JsonObject Input(LoraAdapter adapter, double? weight)
    {
        var input = new JsonObject { ["adapter"] = adapter.Name };
        if (weight is { } w)
            input["weight"] = w;
        input[FormatField] = LoraFormats.DefaultFor(adapter).ToString();
        if (SourceFile(adapter) is { } file)
        {
            input["path"] = adapter.Path;
            input["sha256"] = FileDigests.Sha256(file);
        }
        return input;
    }

    /// <summary>
    /// Starts hashing the inputs' files in the background, so that <see cref="Input"/> at the end of a merge finds
    /// their digests ready (the digest is of the file as it is when <see cref="Input"/> asks).
    /// </summary>
    public static void BeginHashing(IEnumerable<LoraAdapter> adapters)
    {
        foreach (var file in adapters.Select(SourceFile).OfType<string>())
            FileDigests.Begin(file);
    }

    private static string? SourceFile(LoraAdapter adapter) =>
        adapter.Path is not { } path ? null
            : File.Exists(path) ? path
            : File.Exists(Path.Combine(path, PeftAdapterReader.ModelFileName)) ? Path.Combine(path, PeftAdapterReader.ModelFileName)
            : null;

    /// <summary>The field of a recorded input that names its format.</summary>
    public const string FormatField = "format";

    /// <summary>The record as the header stores it.</summary>
    public static string Serialize(JsonObject record) => record.ToJsonString();

    /// <summary>The record of a file's metadata, or null; a value that is not a JSON object is reported as invalid data.</summary>
    public static JsonObject? FromMetadata(IReadOnlyDictionary<string, string> metadata, string path)
    {
        if (!metadata.TryGetValue(MetadataKey, out var text))
            return null;
        try
        {
            return JsonNode.Parse(text) as JsonObject
                ?? throw new LoraException(LoraErrorKind.InvalidData, path, $"__metadata__ '{MetadataKey}' is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new LoraException(LoraErrorKind.InvalidData, path, $"__metadata__ '{MetadataKey}' is not valid JSON ({e.Message})", e);
        }
    }

    /// <summary>Removes a record left in a config (by older versions, or by code that still writes it there) and returns it.</summary>
    public static JsonObject? TakeFromConfig(JsonObject config)
    {
        if (config[LegacyConfigKey] is not JsonObject record)
            return null;
        config.Remove(LegacyConfigKey);
        return record;
    }
}
