using System.Text.Json.Nodes;
using LoraLego.Core.Adapters;
using LoraLego.Core.Compute;
using LoraLego.Core.Models;
using LoraLego.Core.Units;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Core.Surgery;

/// <summary>
/// Extracts a LoRA from a fine-tuned model: for each linear layer, dW = W_fine-tuned - W_base and its truncated
/// SVD (randomized, dense only for small layers), B = U S and A = Vh with scaling 1. Module by module: one layer's
/// two weights and its update are in memory at a time. Layers whose weights are equal are left out.
/// </summary>
public static class LoraExtractor
{
    /// <param name="report">Told each extracted module's rank and kept energy.</param>
    /// <param name="verbose">Told which layers are skipped and why.</param>
    /// <param name="cancellationToken">Checked between modules.</param>
    public static LoraAdapter Extract(BaseModel fineTuned, BaseModel baseModel, ExtractionOptions options, string name,
        Action<ModuleRankChange>? report = null, Action<string>? verbose = null, Action<SurgeryProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(fineTuned);
        ArgumentNullException.ThrowIfNull(baseModel);
        ArgumentNullException.ThrowIfNull(options);
        BakedWeights.RequireNoUnmergedAdapters(fineTuned);
        BakedWeights.RequireNoUnmergedAdapters(baseModel);
        var filter = new ModuleFilter(options.Module);
        var layers = fineTuned.LinearLayers.Where(l => filter.Matches(l.Key)).ToList();
        if (layers.Count == 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, fineTuned.Path, $"no linear layer matches '{filter}'");
        var device = DeviceSelector.Resolve(options.Device, options.Warn);
        var generator = new Generator((ulong)options.Seed, CPU);
        var modules = new List<LoraModule>();
        var changes = new List<ModuleRankChange>();
        for (int i = 0; i < layers.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var layer = layers[i];
            progress?.Invoke(new SurgeryProgress(i, layers.Count, layer.Key));
            if (layer.SharesWeight)
            {
                verbose?.Invoke($"{layer.Key}: tied to the token embeddings, not extracted");
                continue;
            }
            var baseLayer = baseModel.GetLinear(layer.Key);
            if (baseLayer is null || baseLayer.InFeatures != layer.InFeatures || baseLayer.OutFeatures != layer.OutFeatures)
                throw new LoraException(LoraErrorKind.ShapeMismatch, baseModel.Path,
                    $"layer '{layer.Key}' ({layer.InFeatures} -> {layer.OutFeatures}) has no counterpart of that shape in the base model");
            if (ExtractModule(fineTuned, baseModel, layer.Key, options, device, generator) is not var (module, change))
            {
                verbose?.Invoke($"{layer.Key}: weights equal, no module");
                continue;
            }
            modules.Add(module);
            changes.Add(change);
            report?.Invoke(change);
        }
        if (modules.Count == 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, fineTuned.Path, $"the weights equal the base model's in every layer matching '{filter}': there is nothing to extract");
        var template = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = baseModel.Path,
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["lora_dropout"] = 0.0,
            ["inference_mode"] = true,
        };
        var record = SurgeryRecord.Of("extract", options.Rule, changes,
            ("fine_tuned", fineTuned.Path), ("base", baseModel.Path),
            ("svd", $"randomized range finder, oversampling {options.Oversampling}, {options.PowerIterations} power iterations, seed {options.Seed}; dense where the layer is small"));
        return LoraAdapter.Create(name, new AdapterConfig(template), modules, record);
    }

    private static (LoraModule, ModuleRankChange)? ExtractModule(BaseModel fineTuned, BaseModel baseModel, string key, ExtractionOptions options,
        Device device, Generator generator)
    {
        using var scope = NewDisposeScope();
        var delta = Weight(fineTuned, key, device).sub_(Weight(baseModel, key, device));
        double total = delta.square().sum().to_type(ScalarType.Float64).item<double>();
        if (total == 0)
            return null;
        int maxRank = options.Rule.MaxRank ?? (int)Math.Min(delta.shape[0], delta.shape[1]);
        var svd = RandomizedSvd.Of(delta, maxRank, options.Oversampling, options.PowerIterations, generator);
        var values = svd.ToArray();
        int k = options.Rule.Choose(values, total, maxRank);
        var (a, b) = svd.Truncate(k, ScalarType.Float32);
        var module = LoraModule.FromFactors(key, a, b, 1.0, storeAs: options.DType);
        return (module, new ModuleRankChange(key, 0, k, RankRule.EnergyKept(values, total, k)));
    }

    private static Tensor Weight(BaseModel model, string key, Device device)
    {
        using var current = model.Weights.ReadCurrent(key + ".weight");
        return current.to(ScalarType.Float32, device);
    }
}
