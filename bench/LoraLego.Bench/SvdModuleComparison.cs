using System.Diagnostics;
using LoraLego.Core.Adapters;
using LoraLego.Core.Compute;
using LoraLego.Core.Merging;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Bench;

/// <summary>
/// The Svd merge of one module, on the factored path (QR of the stacked factors, SVD of the
/// small core) against PEFT's dense path (SVD of the full out x in update), in one process.
/// </summary>
public static class SvdModuleComparison
{
    public sealed record Result(int Out, int In, int Adapters, int Rank, double FactoredSeconds, double DenseSeconds, double RelativeDifference);

    public static Result Run(int outFeatures, int inFeatures, int adapters, int rank, ComputeDevice device)
    {
        var inputs = Enumerable.Range(0, adapters).Select(i =>
        {
            var g = torch.manual_seed(100 + i);
            var module = LoraModule.FromFactors("model.layers.0.mlp.gate_proj",
                torch.randn(rank, inFeatures, generator: g).div_(Math.Sqrt(inFeatures)),
                torch.randn(outFeatures, rank, generator: g).mul_(0.01), 2.0);
            var config = new AdapterConfig(new System.Text.Json.Nodes.JsonObject { ["r"] = rank, ["lora_alpha"] = 2 * rank });
            return new MergeInput(new LoraAdapter($"s{i}", null, "PEFT", config, [module]));
        }).ToList();
        // One untimed run of each path loads libtorch's kernels, so neither timing pays for that.
        Merge(inputs, rank, device, dense: false);
        Merge(inputs, rank, device, dense: true);
        var (factored, tf) = Merge(inputs, rank, device, dense: false);
        var (dense, td) = Merge(inputs, rank, device, dense: true);
        using var a = factored.Modules[0].Delta();
        using var b = dense.Modules[0].Delta();
        double rel = (a - b).norm().item<float>() / b.norm().item<float>();
        return new Result(outFeatures, inFeatures, adapters, rank, tf, td, rel);
    }

    private static (LoraAdapter, double) Merge(IReadOnlyList<MergeInput> inputs, int rank, ComputeDevice device, bool dense)
    {
        var sw = Stopwatch.StartNew();
        var merged = StandardMerge.Merge(inputs, MergeMethod.Svd, new MergeOptions { Rank = rank, Device = device, DenseSvd = dense });
        return (merged, sw.Elapsed.TotalSeconds);
    }
}
