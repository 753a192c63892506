using System.Text.Json.Nodes;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats.StableDiffusion;

namespace LoraLego.Core.Formats;

/// <summary>
/// Reads a kohya sd-scripts LoRA (the single .safetensors file A1111 and ComfyUI load):
/// &lt;kohya name&gt;.lora_down.weight (A), .lora_up.weight (B) and .alpha (a 0-d tensor; scaling
/// alpha / rank, 1 without it). Names resolve to canonical module keys through the built-in
/// <see cref="SdArchitecture"/> tables; the header's __metadata__ (ss_*) is kept.
/// </summary>
public static class KohyaLoraReader
{
    public const string FormatName = "Kohya";

    private const string Down = "lora_down.weight";
    private const string Up = "lora_up.weight";
    private const string Alpha = "alpha";

    /// <summary>Whether the file's tensors have kohya names (lora_unet_..., lora_te...).</summary>
    public static bool Recognises(SafetensorsFile file) =>
        file.Entries.Any(e => e.Name.Contains('.') && (e.Name.StartsWith("lora_unet_", StringComparison.Ordinal) || e.Name.StartsWith("lora_te", StringComparison.Ordinal)));

    /// <param name="warn">Told about names no table knows (kept as they are: such modules re-export only as kohya).</param>
    /// <exception cref="LoraException">Tucker, LoHa, LoKr and DoRA modules (Unsupported), and shapes that are not LoRA factors.</exception>
    public static LoraAdapter Read(SafetensorsFile file, string name, Action<string>? warn = null)
    {
        var parts = new SortedDictionary<string, Dictionary<string, SafetensorsEntry>>(StringComparer.Ordinal);
        foreach (var entry in file.Entries)
        {
            int dot = entry.Name.IndexOf('.');
            if (dot < 0)
                throw new LoraException(LoraErrorKind.InvalidData, file.Path, $"tensor '{entry.Name}' is not a kohya LoRA tensor (<module>.lora_down.weight, .lora_up.weight or .alpha)");
            string module = entry.Name[..dot], part = entry.Name[(dot + 1)..];
            if (Unsupported(part) is { } what)
                throw new LoraException(LoraErrorKind.Unsupported, file.Path, $"module '{module}' is {what} ('{entry.Name}'), which LoraLego does not merge; only plain LoRA and LoCon modules are supported",
                    errorId: "UnsupportedLoraKind");
            if (part is not (Down or Up or Alpha))
                throw new LoraException(LoraErrorKind.InvalidData, file.Path, $"tensor '{entry.Name}' is not a kohya LoRA tensor (<module>.lora_down.weight, .lora_up.weight or .alpha)");
            if (!parts.TryGetValue(module, out var byPart))
                parts[module] = byPart = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            byPart[part] = entry;
        }
        var architecture = SdArchitecture.ForKohyaNames(parts.Keys, file.Metadata.GetValueOrDefault("ss_base_model_version"));
        var modules = new List<LoraModule>(parts.Count);
        var unknown = new List<string>();
        foreach (var (kohyaName, byPart) in parts)
        {
            if (!byPart.TryGetValue(Down, out var down) || !byPart.TryGetValue(Up, out var up))
                throw new LoraException(LoraErrorKind.InvalidData, file.Path, $"module '{kohyaName}' has {string.Join(" and ", byPart.Keys)} but not both {Down} and {Up}");
            string key = architecture.ByKohyaName(kohyaName)?.Key ?? kohyaName;
            if (key == kohyaName)
                unknown.Add(kohyaName);
            var alpha = byPart.GetValueOrDefault(Alpha);
            modules.Add(LoraFactors.Read(file, key, down, up, null, alpha is null ? null : ReadAlpha(file, alpha), alphaDType: alpha?.DType));
        }
        if (modules.Count == 0)
            throw new LoraException(LoraErrorKind.InvalidData, file.Path, "no lora_down/lora_up weights in this file");
        if (unknown.Count > 0)
            warn?.Invoke($"{file.Path}: {unknown.Count} module name(s) are not {architecture.Name} layers LoraLego knows (first: '{unknown[0]}'); " +
                "they keep their kohya names and can be merged with the same names, but only exported as kohya");
        var template = new JsonObject { ["base_model_name_or_path"] = architecture.BaseModel };
        var config = new AdapterConfig(AdapterConfigDescription.Describe(template, modules, useRsLora: false));
        return new LoraAdapter(name, file.Path, FormatName, config, modules, provenance: Provenance.FromMetadata(file.Metadata, file.Path))
        {
            Metadata = file.Metadata,
        };
    }

    private static string? Unsupported(string part) => part switch
    {
        "lora_mid.weight" => "a Tucker-decomposed convolution (lora_mid)",
        "dora_scale" => "a DoRA module (dora_scale)",
        _ when part.StartsWith("hada_", StringComparison.Ordinal) => "a LoHa module (hada_*)",
        _ when part.StartsWith("lokr_", StringComparison.Ordinal) => "a LoKr module (lokr_*)",
        _ when part is "diff" or "diff_b" or "bias" or "w_norm" or "b_norm" => $"a full or norm fine-tune ({part})",
        _ => null,
    };

    // alpha is a 0-d (or one-element) tensor of any float dtype, int64 in some tools.
    private static double ReadAlpha(SafetensorsFile file, SafetensorsEntry entry)
    {
        if (entry.ElementCount != 1)
            throw new LoraException(LoraErrorKind.InvalidData, file.Path, $"'{entry.Name}' has shape [{string.Join(", ", entry.Shape)}]; alpha is one number");
        using var value = file.ReadTensor(entry.Name);
        using var wide = value.to_type(TorchSharp.torch.ScalarType.Float64);
        double alpha = TensorBytes.ToArray<double>(wide)[0];
        if (!double.IsFinite(alpha))
            throw new LoraException(LoraErrorKind.InvalidData, file.Path, $"'{entry.Name}' is {alpha}", errorId: FiniteCheck.ErrorId);
        return alpha;
    }
}
