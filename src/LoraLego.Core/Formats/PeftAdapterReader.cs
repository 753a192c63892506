using System.Text.RegularExpressions;
using LoraLego.Core.Adapters;

namespace LoraLego.Core.Formats;

/// <summary>Reads a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors).</summary>
public static partial class PeftAdapterReader
{
    public const string ModelFileName = "adapter_model.safetensors";
    public const string ConfigFileName = "adapter_config.json";
    public const string PickleFileName = "adapter_model.bin";

    // base_model.model.<module>.lora_A[.<adapter name>].weight
    [GeneratedRegex(@"^(?:base_model\.model\.)?(?<module>.+)\.lora_(?<side>[AB])(?:\.(?<adapter>[^.]+))?\.weight$")]
    private static partial Regex FactorKey();

    /// <summary>Resolves a folder or a file path to the adapter's safetensors file, refusing what cannot be read.</summary>
    public static string ResolveModelFile(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            string model = System.IO.Path.Combine(full, ModelFileName);
            if (File.Exists(model))
                return model;
            if (File.Exists(System.IO.Path.Combine(full, PickleFileName)))
                throw PickleRefusal(System.IO.Path.Combine(full, PickleFileName));
            throw new LoraException(LoraErrorKind.NotFound, full, $"no adapter files in this folder (expected {ModelFileName} and {ConfigFileName})");
        }
        if (File.Exists(full))
        {
            if (full.EndsWith(".bin", StringComparison.OrdinalIgnoreCase) || full.EndsWith(".pt", StringComparison.OrdinalIgnoreCase) || full.EndsWith(".pth", StringComparison.OrdinalIgnoreCase))
                throw PickleRefusal(full);
            return full;
        }
        throw new LoraException(LoraErrorKind.NotFound, full, "no such file or folder");
    }

    private static LoraException PickleRefusal(string path) => new(LoraErrorKind.Unsupported, path,
        "pickle (.bin) adapters are not read, because unpickling can run arbitrary code; convert it in Python with " +
        "PeftModel.from_pretrained(...).save_pretrained(dir, safe_serialization=True)");

    public static LoraAdapter Read(string path, string? name = null)
    {
        string modelFile = ResolveModelFile(path);
        string folder = System.IO.Path.GetDirectoryName(modelFile)!;
        string configFile = System.IO.Path.Combine(folder, ConfigFileName);
        if (!File.Exists(configFile))
            throw new LoraException(LoraErrorKind.NotFound, configFile, $"{ConfigFileName} not found beside {System.IO.Path.GetFileName(modelFile)}");
        var config = AdapterConfig.Parse(File.ReadAllText(configFile), configFile);
        if (!string.Equals(config.PeftType, "LORA", StringComparison.OrdinalIgnoreCase))
            throw new LoraException(LoraErrorKind.Unsupported, configFile, $"peft_type '{config.PeftType}' is not a LoRA adapter");
        if (config.UseDora)
            throw DoraRefusal(configFile);
        var file = SafetensorsFile.Open(modelFile);
        var modules = BuildModules(file, config);
        if (modules.Count == 0)
            throw new LoraException(LoraErrorKind.InvalidData, modelFile, "no lora_A/lora_B weights in this file");
        var extras = file.Entries.Where(e => !FactorKey().IsMatch(e.Name)).Select(e => LoraTensor.FromFile(file, e)).ToList();
        string adapterName = name ?? new DirectoryInfo(folder).Name;
        return new LoraAdapter(adapterName, folder, "PEFT", config, modules, extras, Provenance.FromMetadata(file.Metadata, modelFile));
    }

    private static LoraException DoraRefusal(string path) => new(LoraErrorKind.Unsupported, path,
        "DoRA adapters (use_dora, lora_magnitude_vector) are not supported: their magnitude vectors are not LoRA units, and dropping them would change the adapter");

    private static List<LoraModule> BuildModules(SafetensorsFile file, AdapterConfig config)
    {
        var pairs = new SortedDictionary<string, (SafetensorsEntry? A, SafetensorsEntry? B)>(StringComparer.Ordinal);
        foreach (var entry in file.Entries)
        {
            if (entry.Name.Contains("lora_magnitude_vector", StringComparison.Ordinal))
                throw DoraRefusal(file.Path);
            if (entry.Name.Contains("lora_embedding_", StringComparison.Ordinal))
                throw new LoraException(LoraErrorKind.Unsupported, file.Path, $"'{entry.Name}' is an embedding LoRA, which LoraLego does not handle yet");
            var match = FactorKey().Match(entry.Name);
            if (!match.Success)
                continue;
            string module = match.Groups["module"].Value;
            var pair = pairs.GetValueOrDefault(module);
            pairs[module] = match.Groups["side"].Value == "A" ? (entry, pair.B) : (pair.A, entry);
        }
        var modules = new List<LoraModule>(pairs.Count);
        foreach (var (key, (a, b)) in pairs)
        {
            if (a is null || b is null)
                throw new LoraException(LoraErrorKind.InvalidData, file.Path, $"module '{key}' has lora_{(a is null ? "B" : "A")} but no lora_{(a is null ? "A" : "B")}");
            modules.Add(LoraFactors.Read(file, key, a, b, config.RankFor(key), config.AlphaFor(key), config.UseRsLora, config.FanInFanOut));
        }
        return modules;
    }
}
