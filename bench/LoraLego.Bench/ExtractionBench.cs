using System.Diagnostics;
using LoraLego.Core.Compute;
using LoraLego.Core.Formats;
using LoraLego.Core.Models;
using LoraLego.Core.Surgery;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Bench;

/// <summary>One extraction of a LoRA from a fine-tuned/base pair, timed in its own process.</summary>
public sealed record ExtractionRunResult(string Method, string Device, int Modules, double Seconds, long PeakBytes, double MeanEnergyKept);

/// <summary>
/// New-LoraFromModel's Core path (randomized range finder) against mergekit's method (a dense SVD of every module's
/// dW, as mergekit-extract-lora computes it), on a synthetic pair with Llama-2-7B's layer shapes.
/// </summary>
public static class ExtractionBench
{
    public static readonly string[] Methods = ["randomized", "dense"];

    private const string ModelFile = "model.safetensors";

    /// <summary>Llama-2-7B's shape with <paramref name="layers"/> decoder layers (32 in the real model).</summary>
    public static SyntheticModel.Shape Llama7B(int layers) => new($"llama-7b-{layers}l", 32000, 4096, 11008, layers, 32, 32, false);

    /// <summary>
    /// Writes the base (random weights) and a "fine-tuned" copy whose every decoder linear weight carries a rank-64
    /// update with a decaying spectrum; rounding the sum to bfloat16 adds a full-rank tail, as real fine-tunes have.
    /// </summary>
    public static (string FineTuned, string Base) Prepare(string data, int layers)
    {
        var shape = Llama7B(layers);
        string basePath = SyntheticModel.Write(Path.Combine(data, shape.Name + "-base"), shape, SafetensorsDType.BF16);
        string tuned = Path.Combine(data, shape.Name + "-tuned");
        if (File.Exists(Path.Combine(tuned, "config.json")))
            return (tuned, basePath);
        Directory.CreateDirectory(tuned);
        var generator = torch.manual_seed(11);
        using var source = SafetensorsFile.Open(Path.Combine(basePath, ModelFile));
        var items = source.Entries.OrderBy(e => e.Begin).Select(e => new SafetensorsWriteItem(e.Name, e.DType, e.Shape, () =>
        {
            var weight = source.ReadTensor(e.Name);
            if (!e.Name.StartsWith("model.layers.", StringComparison.Ordinal) || e.Shape.Length != 2)
                return weight;
            using var scope = NewDisposeScope();
            var spectrum = torch.pow(0.9, torch.arange(64, dtype: ScalarType.Float32)).mul_(0.05 / Math.Sqrt(64));
            var b = torch.randn(e.Shape[0], 64, generator: generator).mul_(spectrum);
            var a = torch.randn(64, e.Shape[1], generator: generator).div_(Math.Sqrt(e.Shape[1]));
            var sum = weight.to(ScalarType.Float32).add_(b.matmul(a)).to(weight.dtype);
            weight.Dispose();
            return sum.MoveToOuterDisposeScope();
        })).ToList();
        SafetensorsWriter.Write(Path.Combine(tuned, ModelFile), items, new Dictionary<string, string> { ["format"] = "pt" });
        File.Copy(Path.Combine(basePath, "config.json"), Path.Combine(tuned, "config.json"));
        return (tuned, basePath);
    }

    public static ExtractionRunResult Run(string method, string fineTuned, string basePath, int rank, ComputeDevice device)
    {
        var sw = Stopwatch.StartNew();
        var energies = method == "dense" ? Dense(fineTuned, basePath, rank, DeviceSelector.Resolve(device)) : Randomized(fineTuned, basePath, rank, device);
        return new ExtractionRunResult(method, DeviceSelector.Resolve(device).type.ToString(), energies.Count, sw.Elapsed.TotalSeconds, PeakMemory.Bytes(), energies.Average());
    }

    public static ExtractionRunResult RunIsolated(string method, string fineTuned, string basePath, int rank, ComputeDevice device, int threads) =>
        ChildRun.Json<ExtractionRunResult>(method, ["extract-once", method, fineTuned, basePath, rank.ToString(), device.ToString(), threads.ToString()]);

    private static List<double> Randomized(string fineTuned, string basePath, int rank, ComputeDevice device)
    {
        var options = new BaseModelOptions { DType = ModelDType.BFloat16, Device = ComputeDevice.Cpu };
        using var tuned = BaseModel.Load(fineTuned, options);
        using var baseModel = BaseModel.Load(basePath, options);
        var energies = new List<double>();
        LoraExtractor.Extract(tuned, baseModel, new ExtractionOptions { Rule = RankRule.Fixed(rank), Module = "model.layers.*", Device = device }, "bench",
            report: c => energies.Add(c.EnergyKept));
        return energies;
    }

    // mergekit-extract-lora's decomposition: dW in float32, torch.linalg.svd(full_matrices=False), the top r kept.
    private static List<double> Dense(string fineTuned, string basePath, int rank, Device device)
    {
        using var tuned = SafetensorsFile.Open(Path.Combine(fineTuned, ModelFile));
        using var baseFile = SafetensorsFile.Open(Path.Combine(basePath, ModelFile));
        var energies = new List<double>();
        var kept = new List<(Tensor A, Tensor B)>();
        foreach (var entry in baseFile.Entries.Where(e => e.Name.StartsWith("model.layers.", StringComparison.Ordinal) && e.Shape.Length == 2).OrderBy(e => e.Name))
        {
            using var scope = NewDisposeScope();
            var delta = tuned.ReadTensor(entry.Name).to(ScalarType.Float32, device).sub_(baseFile.ReadTensor(entry.Name).to(ScalarType.Float32, device));
            var (u, s, vh) = linalg.svd(delta, fullMatrices: false);
            var b = u[.., ..rank].mul(s[..rank]).cpu();
            var a = vh[..rank, ..].cpu();
            energies.Add(s[..rank].square().sum().item<float>() / s.square().sum().item<float>());
            kept.Add((a.MoveToOuterDisposeScope(), b.MoveToOuterDisposeScope()));
        }
        foreach (var (a, b) in kept)
        {
            a.Dispose();
            b.Dispose();
        }
        return energies;
    }
}
