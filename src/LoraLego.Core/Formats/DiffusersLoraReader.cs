using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats.StableDiffusion;

namespace LoraLego.Core.Formats;

/// <summary>
/// Reads a diffusers LoRA (pytorch_lora_weights.safetensors): &lt;component&gt;.&lt;module path&gt;.lora_A.weight
/// and .lora_B.weight, components unet, text_encoder, text_encoder_2 and transformer, each component's
/// LoraConfig (r, lora_alpha, rank_pattern, alpha_pattern) packed as "&lt;component&gt;.&lt;field&gt;" in the
/// header's lora_adapter_metadata. The tensor names less their suffix are already canonical module keys.
/// </summary>
public static partial class DiffusersLoraReader
{
    public const string FormatName = "Diffusers";

    /// <summary>The file name diffusers' save_lora_weights writes and load_lora_weights looks for in a folder.</summary>
    public const string FileName = "pytorch_lora_weights.safetensors";

    /// <summary>The __metadata__ key of the packed per-component LoraConfigs.</summary>
    public const string MetadataKey = "lora_adapter_metadata";

    public static readonly IReadOnlyList<string> Components = ["unet", "text_encoder", "text_encoder_2", "transformer"];

    [GeneratedRegex(@"^(?<component>unet|text_encoder|text_encoder_2|transformer)\.(?<module>.+)\.lora_(?<side>[AB])\.weight$")]
    private static partial Regex FactorKey();

    public static bool Recognises(SafetensorsFile file) => file.Entries.Any(e => FactorKey().IsMatch(e.Name));

    /// <exception cref="LoraException">DoRA modules (Unsupported), tensors of other kinds, A without B.</exception>
    public static LoraAdapter Read(SafetensorsFile file, string name)
    {
        var configs = ComponentConfigs(file);
        var pairs = new SortedDictionary<string, (SafetensorsEntry? A, SafetensorsEntry? B, string Component)>(StringComparer.Ordinal);
        foreach (var entry in file.Entries)
        {
            if (entry.Name.EndsWith(".dora_scale", StringComparison.Ordinal) || entry.Name.Contains("lora_magnitude_vector", StringComparison.Ordinal))
                throw new LoraException(LoraErrorKind.Unsupported, file.Path, $"'{entry.Name}' is a DoRA magnitude, which LoraLego does not merge", errorId: "UnsupportedLoraKind");
            var match = FactorKey().Match(entry.Name);
            if (!match.Success)
                throw new LoraException(LoraErrorKind.InvalidData, file.Path, $"tensor '{entry.Name}' is not a diffusers LoRA factor (<component>.<module>.lora_A.weight or .lora_B.weight)");
            string component = match.Groups["component"].Value;
            string key = $"{component}.{match.Groups["module"].Value}";
            var pair = pairs.GetValueOrDefault(key);
            pairs[key] = match.Groups["side"].Value == "A" ? (entry, pair.B, component) : (pair.A, entry, component);
        }
        var modules = new List<LoraModule>(pairs.Count);
        foreach (var (key, (a, b, component)) in pairs)
        {
            if (a is null || b is null)
                throw new LoraException(LoraErrorKind.InvalidData, file.Path, $"module '{key}' has lora_{(a is null ? "B" : "A")} but no lora_{(a is null ? "A" : "B")}");
            // Without a config for its component a module has diffusers' default: alpha = rank, scaling 1.
            var config = configs.GetValueOrDefault(component);
            string local = key[(component.Length + 1)..];
            modules.Add(LoraFactors.Read(file, key, a, b, config?.RankFor(local), config?.AlphaFor(local), config?.UseRsLora ?? false));
        }
        if (modules.Count == 0)
            throw new LoraException(LoraErrorKind.InvalidData, file.Path, "no lora_A/lora_B weights in this file");
        var template = new JsonObject();
        if (SdArchitecture.ForModules(modules, null) is { } architecture)
            template["base_model_name_or_path"] = architecture.BaseModel;
        var adapterConfig = new AdapterConfig(AdapterConfigDescription.Describe(template, modules, useRsLora: false));
        return new LoraAdapter(name, file.Path, FormatName, adapterConfig, modules, provenance: Provenance.FromMetadata(file.Metadata, file.Path))
        {
            Metadata = file.Metadata,
        };
    }

    private static Dictionary<string, AdapterConfig> ComponentConfigs(SafetensorsFile file)
    {
        var configs = new Dictionary<string, AdapterConfig>(StringComparer.Ordinal);
        if (!file.Metadata.TryGetValue(MetadataKey, out var text))
            return configs;
        JsonObject packed;
        try
        {
            packed = JsonNode.Parse(text) as JsonObject
                ?? throw new LoraException(LoraErrorKind.InvalidData, file.Path, $"__metadata__ '{MetadataKey}' is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new LoraException(LoraErrorKind.InvalidData, file.Path, $"__metadata__ '{MetadataKey}' is not valid JSON ({e.Message})", e);
        }
        foreach (var component in Components)
        {
            var fields = new JsonObject();
            foreach (var (field, value) in packed)
                if (field.StartsWith(component + ".", StringComparison.Ordinal) && !field[(component.Length + 1)..].Contains('.'))
                    fields[field[(component.Length + 1)..]] = value?.DeepClone();
            if (fields.Count == 0)
                continue;
            fields["peft_type"] = "LORA";
            configs[component] = new AdapterConfig(fields);
        }
        return configs;
    }
}
