using System.Diagnostics;
using LoraLego.Core.Adapters;
using LoraLego.Core.Merging;
using LoraLego.Core.Surgery;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Bench;

/// <summary>
/// TiesSvd of one module: the default path (block-by-block combination, randomized range finder) against PEFT's
/// (dense combination, full SVD), and the range finder's error for other oversampling / power-iteration settings.
/// The adapters are Gaussian, each B's column j scaled by decay^j: at decay 1 every adapter's spectrum is flat (the
/// hardest case for a range finder), below 1 it falls as trained adapters' do.
/// </summary>
public static class TrimmedSvdComparison
{
    public sealed record Setting(string Route, int Oversampling, int PowerIterations, double Seconds, double RelativeDifference, double ResidualRatio);

    public sealed record Result(int Out, int In, int Adapters, int Rank, double Density, double DefaultSeconds, double DenseSeconds,
        double RelativeDifference, double ResidualRatio, IReadOnlyList<Setting> Settings);

    public static Result Run(int outFeatures, int inFeatures, int adapters, int rank, double density, double decay)
    {
        var inputs = Enumerable.Range(0, adapters).Select(i =>
        {
            var g = manual_seed(200 + i);
            var module = LoraModule.FromFactors("model.layers.0.mlp.gate_proj",
                randn(rank, inFeatures, generator: g).div_(Math.Sqrt(inFeatures)),
                randn(outFeatures, rank, generator: g).mul_(0.01).mul_(pow(tensor(decay), arange(rank)).to_type(ScalarType.Float32)), 2.0);
            var config = new AdapterConfig(new System.Text.Json.Nodes.JsonObject { ["r"] = rank, ["lora_alpha"] = 2 * rank });
            return new MergeInput(new LoraAdapter($"t{i}", null, "PEFT", config, [module]));
        }).ToList();
        Merge(inputs, rank, density, dense: false);
        var (fast, tf) = Merge(inputs, rank, density, dense: false);
        // The full-rank dense merge is the whole SVD of the trimmed combination: its leading columns are the
        // dense path's rank-k result, and its product is the combination itself.
        int full = Math.Min(outFeatures, inFeatures);
        var (whole, td) = Merge(inputs, full, density, dense: true);
        using var a = whole.Modules[0].A.LoadFloat32();
        using var b = whole.Modules[0].B.LoadFloat32();
        using var combined = b.matmul(a);
        using var best = b[.., ..rank].matmul(a[..rank, ..]);
        double bestResidual = (combined - best).norm().item<float>();
        using var fastDelta = fast.Modules[0].Delta();
        var (rel, ratio) = Compare(fastDelta, best, combined, bestResidual);

        var settings = new List<Setting>();
        // The started routes take SvdMerge's start: the untrimmed sum's leading directions in all but 8 of the sketch's columns.
        using var module = ModuleInputs.Load(inputs[0].Adapter.Modules[0].Key, inputs, density, CPU);
        using var workspace = new CombinationWorkspace();
        (double[], int)? Start(int columns, Generator g) => UntrimmedStart.Of(module, columns - SvdMerge.GaussianColumns, g, get_num_threads(), workspace);
        var routes = new (string Name, Func<Tensor, int, int, int, Generator, SingularFactors> Svd)[]
        {
            ("products", (m, k, p, q, g) => RandomizedSvd.Of(m, k, p, q, g)),
            ("row blocks", (m, k, p, q, g) => RandomizedSvd.OfRowBlocks(m, k, p, q, g, get_num_threads())),
            ("products, started (CUDA's)", (m, k, p, q, g) => RandomizedSvd.Of(m, k, p, q, g, Start(k + p, g))),
            ("row blocks, started (the CPU's)", (m, k, p, q, g) => RandomizedSvd.OfRowBlocks(m, k, p, q, g, get_num_threads(), Start(RandomizedSvd.SketchColumns(m, k, p), g))),
        };
        var runs = routes.SelectMany(r => new[] { (5, 0), (10, 0), (5, 1), (10, 1), (20, 1), (5, 2), (10, 2), (10, 3) }.Select(s => (r.Name, r.Svd, P: s.Item1, Q: s.Item2)));
        foreach (var (route, svdOf, p, q) in runs)
        {
            var sw = Stopwatch.StartNew();
            using var scope = NewDisposeScope();
            using var generator = new Generator(0x5EED);
            var svd = svdOf(combined, rank, p, q, generator);
            var (ra, rb) = svd.Truncate(rank, ScalarType.Float32);
            var approx = rb.matmul(ra);
            double seconds = sw.Elapsed.TotalSeconds;
            var (r, f) = Compare(approx, best, combined, bestResidual);
            settings.Add(new Setting(route, p, q, seconds, r, f));
        }
        return new Result(outFeatures, inFeatures, adapters, rank, density, tf, td, rel, ratio, settings);
    }

    // The difference from the dense rank-k result, and the residual ||C - X|| over the optimal one (1 = as good as the SVD).
    private static (double Relative, double ResidualRatio) Compare(Tensor approx, Tensor best, Tensor combined, double bestResidual) =>
        ((approx - best).norm().item<float>() / best.norm().item<float>(), (combined - approx).norm().item<float>() / bestResidual);

    private static (LoraAdapter, double) Merge(IReadOnlyList<MergeInput> inputs, int rank, double density, bool dense)
    {
        var sw = Stopwatch.StartNew();
        var merged = StandardMerge.Merge(inputs, MergeMethod.TiesSvd, new MergeOptions { Rank = rank, Density = density, DenseSvd = dense, Device = LoraLego.Core.Compute.ComputeDevice.Cpu });
        return (merged, sw.Elapsed.TotalSeconds);
    }
}
