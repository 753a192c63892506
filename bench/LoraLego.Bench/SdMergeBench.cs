using System.Diagnostics;
using LoraLego.Core.Adapters;
using LoraLego.Core.Compute;
using LoraLego.Core.Formats;
using LoraLego.Core.Formats.StableDiffusion;
using LoraLego.Core.Merging;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Bench;

/// <summary>
/// Merges of SDXL-shaped kohya LoRAs (every attention, feed-forward and conv layer of SDXL's UNet, the layers
/// a LoCon trains), each timed end to end in its own process: LoraLego's Lego and factored Svd merges against
/// kohya's svd_merge_lora method (each module's dense update, summed, then an SVD), which is MergeOptions.DenseSvd.
/// </summary>
public static class SdMergeBench
{
    public static readonly string[] Methods = ["Lego", "Svd", "DenseSvd"];

    /// <summary>The UNet's transformer layers (proj_in/out, attention, feed-forward) and its resnet, shortcut and sampler convolutions.</summary>
    public static IReadOnlyList<SdModule> Modules() => SdArchitecture.Sdxl.Modules
        .Where(m => m.Key.StartsWith("unet.", StringComparison.Ordinal) && (m.Key.Contains(".attentions.") || m.Kernel is not null))
        .Where(m => m.Key is not ("unet.conv_in" or "unet.conv_out"))
        .ToList();

    /// <summary>Writes <paramref name="count"/> seeded kohya files (fp16 factors, alpha = rank / 2 as a 0-d fp16 tensor), once.</summary>
    public static IReadOnlyList<string> Generate(string folder, int count, int rank)
    {
        Directory.CreateDirectory(folder);
        var paths = new List<string>();
        for (int i = 0; i < count; i++)
        {
            string path = Path.Combine(folder, $"sdxl-r{rank}-{i}.safetensors");
            paths.Add(path);
            if (File.Exists(path))
                continue;
            var generator = manual_seed(100 + i);
            var items = new List<SafetensorsWriteItem>();
            foreach (var m in Modules())
            {
                long[] down = m.Kernel is { } k ? [rank, m.InFeatures, k.Height, k.Width] : [rank, m.InFeatures];
                long[] up = m.Kernel is null ? [m.OutFeatures, rank] : [m.OutFeatures, rank, 1, 1];
                items.Add(new($"{m.KohyaName}.lora_down.weight", SafetensorsDType.F16, down, () => randn(down, generator: generator).mul_(1.0 / Math.Sqrt(m.FlatInFeatures))));
                items.Add(new($"{m.KohyaName}.lora_up.weight", SafetensorsDType.F16, up, () => randn(up, generator: generator).mul_(0.01)));
                items.Add(new($"{m.KohyaName}.alpha", SafetensorsDType.F16, [], () => tensor(rank / 2.0)));
            }
            SafetensorsWriter.Write(path, items, new Dictionary<string, string> { ["ss_network_module"] = "networks.lora", ["ss_network_dim"] = $"{rank}", ["ss_base_model_version"] = "sdxl_base_v1-0" });
        }
        return paths;
    }

    /// <summary>Import, merge to <paramref name="rank"/>, export as kohya: what a user's pipeline does.</summary>
    public static MergeRunResult Run(string method, string output, int rank, IReadOnlyList<string> files)
    {
        var sw = Stopwatch.StartNew();
        var inputs = files.Select(f => new MergeInput(LoraReader.Read(f))).ToList();
        LoraAdapter merged = method == "Lego"
            ? LegoMerge.Merge(inputs, new LegoOptions { Clustering = new() { K = rank, Device = ComputeDevice.Cpu } })
            : StandardMerge.Merge(inputs, MergeMethod.Svd, new MergeOptions { Rank = rank, Device = ComputeDevice.Cpu, DenseSvd = method == "DenseSvd" });
        LoraWriter.Write(merged, output, LoraFormat.Kohya, null);
        double seconds = sw.Elapsed.TotalSeconds;
        return new MergeRunResult(method, "Cpu", seconds, PeakMemory.Bytes(), files.Sum(f => new FileInfo(f).Length), new FileInfo(output).Length);
    }

    public static MergeRunResult RunIsolated(string method, string output, int rank, IReadOnlyList<string> files) =>
        ChildRun.Json<MergeRunResult>(method, new[] { "sd-merge-once", method, output, rank.ToString() }.Concat(files));

    public static void Print(string data, int count, int rank, IEnumerable<string> methods)
    {
        var files = Generate(data, count, rank);
        var modules = Modules();
        Console.WriteLine($"# {Environment.ProcessorCount} cores, {torch.get_num_threads()} libtorch threads, {DateTime.UtcNow:yyyy-MM-dd}: {count} SDXL-shaped kohya LoRAs, rank {rank}, fp16, " +
            $"{modules.Count} UNet modules ({modules.Count(m => m.Kernel is not null)} convolutions), merged to rank {rank} on the CPU, exported as kohya");
        Console.WriteLine("| method | seconds | peak RSS (MiB) | input MiB | output MiB |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        foreach (var method in methods)
        {
            var r = RunIsolated(method, Path.Combine(data, $"merged-{method}.safetensors"), rank, files);
            Console.WriteLine($"| {r.Method} | {r.Seconds:F1} | {r.PeakBytes >> 20} | {r.InputBytes >> 20} | {r.OutputBytes >> 20} |");
        }
    }
}
