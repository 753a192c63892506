using System.Text.Json.Nodes;
using LoraLego.Core.Formats;

namespace LoraLego.Core.Adapters;

/// <summary>
/// A LoRA adapter: its modules (lazy A/B factors), the config it came with, and any tensors
/// that are not LoRA factors (modules_to_save), kept for re-export.
/// </summary>
public sealed class LoraAdapter
{
    private readonly Dictionary<string, LoraModule> _byKey;

    /// <param name="provenance">Where the adapter came from (<see cref="Adapters.Provenance"/>); a record still inside the config is moved here.</param>
    public LoraAdapter(string name, string? path, string format, AdapterConfig config, IReadOnlyList<LoraModule> modules, IReadOnlyList<LoraTensor>? extraTensors = null,
        JsonObject? provenance = null)
    {
        Name = name;
        Provenance = Adapters.Provenance.TakeFromConfig(config.Json) ?? provenance;
        Path = path;
        Format = format;
        Config = config;
        Modules = modules;
        ExtraTensors = extraTensors ?? [];
        _byKey = new Dictionary<string, LoraModule>(StringComparer.Ordinal);
        foreach (var m in modules)
            if (!_byKey.TryAdd(m.Key, m))
                throw new LoraException(LoraErrorKind.InvalidData, path ?? name, $"module '{m.Key}' appears twice");
    }

    public string Name { get; }

    /// <summary>The folder (PEFT) or file (kohya, diffusers) the adapter was read from; null for an adapter computed in memory.</summary>
    public string? Path { get; }

    public string Format { get; }

    /// <summary>
    /// The record of the merge that made this adapter (method, inputs, options; see <see cref="Adapters.Provenance"/>),
    /// null for a trained adapter. Mutable so that later steps (a tuning search) can add to it before export.
    /// </summary>
    public JsonObject? Provenance { get; }

    /// <summary>The recipe text that made this adapter, when a recipe did.</summary>
    public string? Recipe => Provenance?["recipe"] is JsonValue v && v.TryGetValue<string>(out var text) ? text : null;

    public AdapterConfig Config { get; }

    /// <summary>
    /// The __metadata__ of the single file the adapter was read from (kohya's ss_* training record,
    /// diffusers' lora_adapter_metadata); empty for PEFT folders and computed adapters. Kohya exports keep it.
    /// </summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    public string? BaseModel => Config.BaseModel;

    /// <summary>The config's r (modules may differ through rank_pattern).</summary>
    public int Rank => Config.R;

    public double Alpha => Config.LoraAlpha;

    public bool UseRsLora => Config.UseRsLora;

    public string[] TargetModules => Config.TargetModules;

    public IReadOnlyList<LoraModule> Modules { get; }

    public IReadOnlyList<LoraTensor> ExtraTensors { get; }

    public int ModuleCount => Modules.Count;

    public long ParameterCount => Modules.Sum(m => m.ParameterCount);

    /// <summary>The element type of the factors (the most common one if they are mixed).</summary>
    public SafetensorsDType DType => Modules.Count == 0
        ? SafetensorsDType.F32
        : Modules.SelectMany(m => new[] { m.A.DType, m.B.DType }).GroupBy(d => d).MaxBy(g => g.Count())!.Key;

    /// <summary>
    /// An adapter computed in memory (a merge, a join): its config is <paramref name="template"/>'s
    /// (unknown fields kept, e.g. base_model_name_or_path, task_type) rewritten to describe the modules.
    /// </summary>
    /// <param name="provenance">The record of the computation, written to the export's __metadata__.</param>
    public static LoraAdapter Create(string name, AdapterConfig template, IReadOnlyList<LoraModule> modules, JsonObject? provenance = null)
    {
        var json = AdapterConfigDescription.Describe(template.Json, modules, useRsLora: false);
        return new LoraAdapter(name, null, "PEFT", new AdapterConfig(json), modules, provenance: provenance);
    }

    /// <summary>The same adapter with only the modules <paramref name="keep"/> accepts: a view for merging part of it.</summary>
    public LoraAdapter WithModules(Func<string, bool> keep) =>
        new(Name, Path, Format, Config, Modules.Where(m => keep(m.Key)).ToList(), ExtraTensors, Provenance) { Metadata = Metadata };

    public LoraModule? GetModule(string key) => _byKey.GetValueOrDefault(key);

    public override string ToString() => Name;
}
