using System.Globalization;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats.StableDiffusion;
using static TorchSharp.torch;

namespace LoraLego.Core.Formats;

/// <summary>
/// Writes a LoraAdapter as one kohya sd-scripts .safetensors file (A1111, ComfyUI): kohya names from the
/// <see cref="SdArchitecture"/> tables, 4-D factors for convolutions, each module's alpha as a 0-d tensor in
/// the dtype it was read in (float32 for computed modules), and the ss_* metadata of a kohya input kept,
/// with ss_network_dim, ss_network_alpha and ss_output_name updated and sshs_model_hash computed.
/// </summary>
public static class KohyaLoraWriter
{
    public const string ModelHashKey = "sshs_model_hash";

    /// <summary>sd-webui's legacy hash covers bytes of a serialisation LoraLego does not reproduce; dropped rather than left stale.</summary>
    public const string LegacyHashKey = "sshs_legacy_hash";

    private static readonly string HashPlaceholder = new('0', 64);

    /// <param name="dtype">Element type of the factors; null keeps each tensor's own. Alphas keep theirs.</param>
    public static void Write(LoraAdapter adapter, string file, SafetensorsDType? dtype = null, CancellationToken cancellationToken = default)
    {
        file = System.IO.Path.GetFullPath(file);
        var items = BuildItems(adapter, dtype, file);
        var metadata = BuildMetadata(adapter, System.IO.Path.GetFileNameWithoutExtension(file), file);
        AtomicFile.Write(file, stream =>
        {
            using var hashing = new DataSectionHasher(stream);
            SafetensorsWriter.Write(hashing, items, metadata, cancellationToken);
            hashing.ReplaceInHeader($"\"{ModelHashKey}\":\"{HashPlaceholder}\"", $"\"{ModelHashKey}\":\"{hashing.DataHash()}\"");
        });
    }

    /// <summary>
    /// The tensors in sd-scripts' order (safetensors sorts by dtype, widest first, then by name), so an
    /// unchanged kohya file is written with the same data section, and so the same sshs_model_hash.
    /// </summary>
    /// <exception cref="LoraException">A module that is no layer of SD1.5 or SDXL (Unsupported), naming <paramref name="target"/>.</exception>
    public static IReadOnlyList<SafetensorsWriteItem> BuildItems(LoraAdapter adapter, SafetensorsDType? dtype, string target)
    {
        var names = KohyaNames(adapter, target);
        bool fromKohyaFile = adapter.Path is not null && adapter.Format == KohyaLoraReader.FormatName;
        var items = new List<SafetensorsWriteItem>();
        foreach (var m in adapter.Modules)
        {
            string name = names[m.Key];
            items.AddRange(LoraFactors.Items(m, $"{name}.lora_down.weight", $"{name}.lora_up.weight", dtype));
            // A kohya module without alpha has scaling 1 and stays without; every other module states its alpha.
            if (m.AlphaDType is null && fromKohyaFile)
                continue;
            double alpha = AdapterConfigDescription.AlphaFor(m, useRsLora: false);
            var alphaDType = m.AlphaDType ?? SafetensorsDType.F32;
            items.Add(new SafetensorsWriteItem($"{name}.alpha", alphaDType, [], () => tensor(alpha, ScalarType.Float64).to_type(alphaDType.ToScalarType())));
        }
        return items.OrderBy(i => WidthOrder(i.DType)).ThenBy(i => i.Name, StringComparer.Ordinal).ToList();
    }

    private static Dictionary<string, string> KohyaNames(LoraAdapter adapter, string target)
    {
        var named = adapter.Modules.Where(m => !IsKohyaName(m.Key)).ToList();
        var architecture = SdArchitecture.ForModules(named, adapter.BaseModel);
        if (architecture is null && named.Count > 0)
        {
            var stray = named.FirstOrDefault(m => SdArchitecture.All.All(a => a.ByKey(m.Key)?.Fits(m) != true)) ?? named[0];
            throw new LoraException(LoraErrorKind.Unsupported, target,
                $"adapter '{adapter.Name}', module '{stray}' is not a layer of SD1.5 or SDXL (or its modules mix both), so it has no kohya name; export it as PEFT or Diffusers",
                errorId: "NoKohyaName");
        }
        return adapter.Modules.ToDictionary(m => m.Key, m => IsKohyaName(m.Key) ? m.Key : architecture!.ByKey(m.Key)!.KohyaName, StringComparer.Ordinal);
    }

    /// <summary>A module key that is a kohya name no table knows, kept as it was read.</summary>
    public static bool IsKohyaName(string key) => key.StartsWith("lora_", StringComparison.Ordinal) && !key.Contains('.');

    private static SortedDictionary<string, string> BuildMetadata(LoraAdapter adapter, string outputName, string target)
    {
        var metadata = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (adapter.Format == KohyaLoraReader.FormatName)
            foreach (var (k, v) in adapter.Metadata)
                metadata[k] = v;
        metadata.Remove(LegacyHashKey);
        metadata.Remove(Provenance.MetadataKey);
        var config = new AdapterConfig(PeftAdapterWriter.BuildConfig(adapter));
        SetNumber(metadata, "ss_network_dim", config.R);
        SetNumber(metadata, "ss_network_alpha", config.LoraAlpha);
        metadata["ss_output_name"] = outputName;
        metadata.TryAdd("ss_network_module", "networks.lora");
        var named = adapter.Modules.Where(m => !IsKohyaName(m.Key)).ToList();
        if (SdArchitecture.ForModules(named, adapter.BaseModel) is { } architecture)
        {
            metadata.TryAdd("ss_base_model_version", architecture.BaseModelVersion);
            metadata.TryAdd("ss_v2", "False");
        }
        if (adapter.Provenance is { } record)
            metadata[Provenance.MetadataKey] = Provenance.Serialize(record);
        metadata[ModelHashKey] = HashPlaceholder;
        return metadata;
    }

    // A value that still says the same number keeps its text ("16.0" stays "16.0").
    private static void SetNumber(IDictionary<string, string> metadata, string key, double value)
    {
        if (metadata.TryGetValue(key, out var text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var old)
            && Math.Abs(old - value) <= 1e-9 * Math.Max(1, Math.Abs(value)))
            return;
        metadata[key] = value.ToString("R", CultureInfo.InvariantCulture);
    }

    // safetensors' Rust serializer orders by dtype descending (its enum order), then by name.
    private static int WidthOrder(SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.I64 => 0,
        SafetensorsDType.F64 => 1,
        SafetensorsDType.F32 => 2,
        SafetensorsDType.I32 => 3,
        SafetensorsDType.BF16 => 4,
        SafetensorsDType.F16 => 5,
        SafetensorsDType.I16 => 6,
        SafetensorsDType.I8 => 7,
        SafetensorsDType.U8 => 8,
        _ => 9,
    };
}
