using System.Text.Json.Nodes;
using LoraLego.Core.Adapters;

namespace LoraLego.Core.Formats;

/// <summary>
/// Writes a LoraAdapter as a diffusers LoRA file (what save_lora_weights writes and load_lora_weights
/// reads): &lt;module key&gt;.lora_A.weight / .lora_B.weight (4-D for convolutions), and each component's
/// rank and alpha, per module where they differ, as a packed LoraConfig in the header's
/// lora_adapter_metadata, so alpha stays exact instead of becoming the rank.
/// </summary>
public static class DiffusersLoraWriter
{
    private static readonly string[] ConfigFields = ["r", "lora_alpha", "rank_pattern", "alpha_pattern", "target_modules", "use_rslora"];

    /// <param name="dtype">Element type of the factors; null keeps each tensor's own.</param>
    public static void Write(LoraAdapter adapter, string file, SafetensorsDType? dtype = null, CancellationToken cancellationToken = default)
    {
        file = System.IO.Path.GetFullPath(file);
        var items = BuildItems(adapter, dtype, file);
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "pt",
            [DiffusersLoraReader.MetadataKey] = PackedConfigs(adapter).ToJsonString(),
        };
        if (adapter.Provenance is { } record)
            metadata[Provenance.MetadataKey] = Provenance.Serialize(record);
        SafetensorsWriter.Write(file, items, metadata, cancellationToken);
    }

    /// <exception cref="LoraException">A module whose key names no diffusers component (Unsupported), naming <paramref name="target"/>.</exception>
    public static IReadOnlyList<SafetensorsWriteItem> BuildItems(LoraAdapter adapter, SafetensorsDType? dtype, string target)
    {
        foreach (var m in adapter.Modules)
            ComponentOf(adapter, m, target);
        return adapter.Modules.OrderBy(m => m.Key, StringComparer.Ordinal)
            .SelectMany(m => LoraFactors.Items(m, $"{m.Key}.lora_A.weight", $"{m.Key}.lora_B.weight", dtype)).ToList();
    }

    private static JsonObject PackedConfigs(LoraAdapter adapter)
    {
        var packed = new JsonObject();
        foreach (var group in adapter.Modules.GroupBy(m => ComponentOf(adapter, m, adapter.Name)).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var local = group.Select(m => new LoraModule(m.Key[(group.Key.Length + 1)..], m.Rank, AdapterConfigDescription.AlphaFor(m, false), false, m.A, m.B)).ToList();
            var config = AdapterConfigDescription.Describe(new JsonObject(), local, useRsLora: false);
            foreach (var field in ConfigFields)
                packed[$"{group.Key}.{field}"] = config[field]?.DeepClone();
        }
        return packed;
    }

    private static string ComponentOf(LoraAdapter adapter, LoraModule module, string target) =>
        DiffusersLoraReader.Components.FirstOrDefault(c => module.Key.StartsWith(c + ".", StringComparison.Ordinal))
        ?? throw new LoraException(LoraErrorKind.Unsupported, target,
            $"adapter '{adapter.Name}', module '{module.Key}' names no diffusers component (unet., text_encoder., text_encoder_2., transformer.); export it as PEFT" +
            (KohyaLoraWriter.IsKohyaName(module.Key) ? " or Kohya (its kohya name is not a layer LoraLego knows)" : ""),
            errorId: "NoDiffusersName");
}
