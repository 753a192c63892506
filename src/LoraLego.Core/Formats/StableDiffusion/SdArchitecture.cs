using LoraLego.Core.Adapters;

namespace LoraLego.Core.Formats.StableDiffusion;

/// <summary>
/// A Stable Diffusion model's table of adaptable layers (UNet and CLIP text encoders), generated from
/// its architecture config: it turns kohya's flattened names (which cannot be un-flattened by replacing
/// '_', since layer names contain it) into canonical module keys and back.
/// </summary>
public sealed class SdArchitecture
{
    private readonly Dictionary<string, SdModule> _byKey;
    private readonly Dictionary<string, SdModule> _byKohyaName;

    private SdArchitecture(string name, string baseModel, string baseModelVersion, IEnumerable<SdModule> modules)
    {
        Name = name;
        BaseModel = baseModel;
        BaseModelVersion = baseModelVersion;
        Modules = modules.ToList();
        _byKey = Modules.ToDictionary(m => m.Key, StringComparer.Ordinal);
        _byKohyaName = Modules.ToDictionary(m => m.KohyaName, StringComparer.Ordinal);
    }

    /// <summary>SD1.5 (also SD1.x): kohya names its UNet layers by their diffusers paths and its text encoder lora_te.</summary>
    public static SdArchitecture Sd15 { get; } = new("SD1.5", "runwayml/stable-diffusion-v1-5", "sd_v1",
        UnetModules.Build(UnetConfig.Sd15, kohyaUsesLdmNames: false)
            .Concat(ClipTextModules.Build("text_encoder", "lora_te", 12, 768, 3072)));

    /// <summary>SDXL base: kohya names its UNet layers by their LDM paths and its text encoders lora_te1 (CLIP ViT-L) and lora_te2 (OpenCLIP bigG).</summary>
    public static SdArchitecture Sdxl { get; } = new("SDXL", "stabilityai/stable-diffusion-xl-base-1.0", "sdxl_base_v1-0",
        UnetModules.Build(UnetConfig.Sdxl, kohyaUsesLdmNames: true)
            .Concat(ClipTextModules.Build("text_encoder", "lora_te1", 12, 768, 3072))
            .Concat(ClipTextModules.Build("text_encoder_2", "lora_te2", 32, 1280, 5120)));

    public static IReadOnlyList<SdArchitecture> All { get; } = [Sd15, Sdxl];

    public string Name { get; }

    /// <summary>The Hugging Face id of the base model, written as base_model_name_or_path.</summary>
    public string BaseModel { get; }

    /// <summary>kohya's ss_base_model_version for this model.</summary>
    public string BaseModelVersion { get; }

    public IReadOnlyList<SdModule> Modules { get; }

    public SdModule? ByKey(string key) => _byKey.GetValueOrDefault(key);

    public SdModule? ByKohyaName(string kohyaName) => _byKohyaName.GetValueOrDefault(kohyaName);

    /// <summary>
    /// The architecture whose kohya names cover most of <paramref name="kohyaNames"/>; SD1.x and SDXL
    /// files name their layers differently (diffusers or LDM paths, lora_te or lora_te1/te2), so one wins.
    /// ss_base_model_version decides a tie.
    /// </summary>
    public static SdArchitecture ForKohyaNames(IReadOnlyCollection<string> kohyaNames, string? baseModelVersion) =>
        All.Select(a => (Architecture: a, Known: kohyaNames.Count(n => a.ByKohyaName(n) is not null)))
            .OrderByDescending(p => p.Known)
            .ThenByDescending(p => baseModelVersion?.StartsWith(p.Architecture.BaseModelVersion[..4], StringComparison.Ordinal) == true)
            .First().Architecture;

    /// <summary>
    /// The architecture that has every one of <paramref name="modules"/> with its shape, preferring the one
    /// <paramref name="baseModel"/> names; null when none has them all.
    /// </summary>
    public static SdArchitecture? ForModules(IReadOnlyList<LoraModule> modules, string? baseModel)
    {
        var fitting = All.Where(a => modules.All(m => a.ByKey(m.Key)?.Fits(m) == true)).ToList();
        return fitting.FirstOrDefault(a => a.BaseModel == baseModel) ?? fitting.FirstOrDefault();
    }

    public override string ToString() => $"{Name} ({Modules.Count} layers)";
}
