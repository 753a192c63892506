using System.Text.Json;
using LoraLego.Bench;
using LoraLego.Core.Compute;
using LoraLego.Core.Formats;
using LoraLego.Core.Models;
using LoraLego.Core.Mixture;
using TorchSharp;

// LoraLego's benchmark harness. `all` generates seeded synthetic adapters (not committed), times
// each merge end to end in its own process, measures the I/O floor in the same run and prints a
// markdown table for docs/benchmarks.md.
var options = Options.Parse(args.Skip(1).ToArray());
// Loaded as the module loads it (with its OpenMP wait policy), before the first torch call would load it otherwise.
TorchRuntime.Load();
torch.set_num_threads(options.Threads);
switch (args.FirstOrDefault())
{
    case "merge-once":
        {
            var result = MergeRun.RunTwice(args[1], args.Skip(4).TakeWhile(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray(), args[2], ComputeDevice.Parse(args[3]),
                args.Contains("--again"), int.Parse(Options.Argument(args, "later", "0")));
            Console.WriteLine(JsonSerializer.Serialize(result));
            return 0;
        }
    case "dare-modules":
        {
            // dare-modules METHOD OUTDIR SEED KEYFILTER DIRS...
            var result = DareModules.Run(args[1], args[2], long.Parse(args[3]), args[4], args.Skip(5).TakeWhile(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray());
            Console.WriteLine(JsonSerializer.Serialize(result));
            return 0;
        }
    case "all":
        RunAll(options, args);
        return 0;
    case "svd-module":
        PrintSvd(options.Device);
        return 0;
    case "trim-svd-module":
        PrintTrimmedSvd(args.Skip(1).ToArray());
        return 0;
    case "kmeans":
        {
            var t = KMeansTiming.Run(options.Device);
            Console.WriteLine($"KMeans.Fit, {t.Points} x {t.Dimension} float64, k 16, 8 restarts, {options.Device}: median {t.Milliseconds:F1} ms");
            return 0;
        }
    case "memory":
        RunMemory(options);
        return 0;
    case "forward":
        RunForward(options);
        return 0;
    case "mole":
        RunMole(options);
        return 0;
    case "extract":
        RunExtraction(args.Skip(1).ToArray(), options);
        return 0;
    case "extract-once":
        torch.set_num_threads(int.Parse(args[6]));
        Console.WriteLine(JsonSerializer.Serialize(ExtractionBench.Run(args[1], args[2], args[3], int.Parse(args[4]), ComputeDevice.Parse(args[5]))));
        return 0;
    case "lego-phases":
        MergePhases.Run(args.Skip(2).TakeWhile(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray(), int.Parse(args[1]));
        return 0;
    case "lego-error":
        LegoErrorProbe.Run(args[1]);
        return 0;
    case "merge-quality":
        MergeQuality.Run(args[1], args.Skip(2).Where(a => !a.StartsWith("--rows=", StringComparison.Ordinal)).Select(MergeQuality.Parse),
            args.FirstOrDefault(a => a.StartsWith("--rows=", StringComparison.Ordinal)) is { } rows ? int.Parse(rows["--rows=".Length..]) : null);
        return 0;
    case "optimize":
        OptimizeSkillbench.Run(args.Skip(1).ToArray());
        return 0;
    case "sd-merge":
        SdMergeBench.Print(Path.GetFullPath(Options.Argument(args, "data", "bench/out/sd")), int.Parse(Options.Argument(args, "adapters", "3")),
            int.Parse(Options.Argument(args, "rank", "32")), Options.Argument(args, "methods", string.Join(",", SdMergeBench.Methods)).Split(','));
        return 0;
    case "sd-merge-once":
        Console.WriteLine(JsonSerializer.Serialize(SdMergeBench.Run(args[1], args[2], int.Parse(args[3]), args.Skip(4).ToArray())));
        return 0;
    case "sd-fixtures":
        SdFixtures.Write(args.Length > 1 ? args[1] : "tests/fixtures/sd");
        return 0;
    default:
        Console.WriteLine("""
            usage: loralego-bench all    [--shape 7b] [--adapters 8] [--rank 16] [--dtype F16] [--device Cpu|Cuda|Auto] [--data DIR] [--methods Lego,Cat,...] [--threads N] [--later N] [--no-svd-module]
                                                                (each merge in a fresh process, and again in it where the first took under 20 s, then N more times)
                   loralego-bench merge-once METHOD OUTDIR Cpu|Cuda ADAPTERDIR... [--threads N] [--again [--later N]]
                                                                (one merge in this process, as JSON; --again: once more, --later: N more times after that)
                   loralego-bench extract [--layers 1] [--threads N] [--rank 16] [--device Cpu|Cuda] [--data DIR] [--methods randomized,dense]
                                                                            (New-LoraFromModel on a Llama-2-7B-shaped pair of that many layers)
                   loralego-bench svd-module [--device Cpu|Cuda]
                   loralego-bench trim-svd-module [--out 11008] [--in 4096] [--decay 1] [--threads N]  (TiesSvd of one module: randomized vs PEFT's dense SVD)
                   loralego-bench dare-modules METHOD OUTDIR SEED KEYFILTER ADAPTERDIR... [--threads N]
                                                                            (a seeded DARE merge of the modules whose keys contain KEYFILTER, CPU seconds)
                   loralego-bench kmeans [--device Cpu|Cuda]                 (KMeans.Fit on one 7B module's pool)
                   loralego-bench lego-phases MODULES ADAPTERDIR... [--threads N](a Lego merge's seconds per phase over its first modules)
                   loralego-bench memory [--shape 70b] [--adapters 8] [--rank 16] [--methods Lego,Linear]
                   loralego-bench forward [--device Cpu|Cuda] [--data DIR]   (tiny fixture model and a synthetic Llama-1B)
                   loralego-bench mole [--device Cpu|Cuda] [--data DIR]      (MoLE gate training speed)
                   loralego-bench merge-quality SETDIR [--rows=N] MERGE ...  (answer-only scores of merges of a skill set;
                                                                            MERGE: base | lego | cat:w=0.25 | lego:k=16,pr=off,or=on,target=mean,norm=l2,space=raw,w=1)
                   loralego-bench sd-merge [--adapters 3] [--rank 32] [--methods Lego,Svd,DenseSvd] [--data DIR]
                                                                            (SDXL-shaped kohya LoRAs merged on the CPU; DenseSvd is kohya's svd_merge_lora)
                   loralego-bench sd-fixtures [DIR]                          (writes the kohya and diffusers fixtures of tests/fixtures/sd)
                   loralego-bench optimize [--budget 40] [--epochs 2] [--seed 0] [--rows N]   (Optimize-LoraMerge on skillbench: train/ to tune, eval/ to score)
            """);
        return 2;
}

static void RunAll(Options o, string[] args)
{
    var shape = ModelShape.Parse(o.Shape);
    string data = Path.GetFullPath(o.Data);
    Console.WriteLine($"# {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}, shape {shape.Name}, {o.Adapters} adapters r{o.Rank} {o.DType}, device {o.Device}, OpenMP wait policy {TorchRuntime.OpenMpWaitPolicy ?? "default"}");
    var dirs = SyntheticAdapters.Generate(data, shape, o.Adapters, o.Rank, o.DType, seed: 1);
    var files = dirs.Select(d => Path.Combine(d, PeftAdapterReader.ModelFileName)).ToList();
    // "first": the merge in a fresh process (the runtime, libtorch and the JIT start inside it); "again": the same
    // merge run again in that process, as a PowerShell session's second merge runs; "later" (with --later N): the
    // median of N more runs after that, once tiered compilation has recompiled what the first two ran, as a session's
    // later merges run. All against the floor measured right after them.
    int later = int.Parse(Options.Argument(args, "later", "0"));
    Console.WriteLine("| method | device | seconds (first) | seconds (again) | seconds (later) | I/O floor (s) | ratio (first) | ratio (again) | ratio (later) | peak RSS (MiB) | input MiB | output MiB |");
    Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    foreach (var method in o.Methods)
    {
        string output = Path.Combine(data, "out-" + method);
        var r = MergeRun.RunIsolated(method, dirs, output, o.Device, o.Threads, again: true, later);
        double floor = IoFloor.Seconds(files, r.OutputBytes, data);
        double? settled = r.LaterSeconds is { Length: > 0 } runs ? runs.Order().ElementAt(runs.Length / 2) : null;
        string Cell(double? seconds, double divisor = 1) => seconds is { } x ? (x / divisor).ToString(divisor == 1 ? "F2" : "F1") : "-";
        Console.WriteLine($"| {r.Method} | {r.Device} | {r.Seconds:F2} | {Cell(r.AgainSeconds)} | {Cell(settled)} | {floor:F2} | {r.Seconds / floor:F1} | " +
            $"{Cell(r.AgainSeconds, floor)} | {Cell(settled, floor)} | {r.PeakBytes >> 20} | {r.InputBytes >> 20} | {r.OutputBytes >> 20} |");
        Directory.Delete(output, recursive: true);
    }
    if (!args.Contains("--no-svd-module"))
        PrintSvd(o.Device);
}

static void PrintSvd(ComputeDevice device)
{
    var s = SvdModuleComparison.Run(11008, 4096, 8, 16, device);
    Console.WriteLine();
    Console.WriteLine($"Svd merge of one {s.Out} x {s.In} module, {s.Adapters} adapters r{s.Rank} -> r{s.Rank}, {device}: " +
        $"factored {s.FactoredSeconds * 1000:F1} ms, dense {s.DenseSeconds * 1000:F0} ms, speed-up {s.DenseSeconds / s.FactoredSeconds:F0}x, relative difference {s.RelativeDifference:E1}");
}

static void PrintTrimmedSvd(string[] args)
{
    int Arg(string name, int fallback) => Array.IndexOf(args, name) is var i and >= 0 ? int.Parse(args[i + 1]) : fallback;
    // On busy shared cores one libtorch thread is faster: see RunExtraction.
    torch.set_num_threads(Arg("--threads", Environment.ProcessorCount));
    double decay = Array.IndexOf(args, "--decay") is var d and >= 0 ? double.Parse(args[d + 1], System.Globalization.CultureInfo.InvariantCulture) : 1;
    var r = TrimmedSvdComparison.Run(Arg("--out", 11008), Arg("--in", 4096), 8, 16, 0.5, decay);
    Console.WriteLine($"TiesSvd of one {r.Out} x {r.In} module, {r.Adapters} adapters r{r.Rank} (spectra decaying by {decay} a rank), density {r.Density} -> r{r.Rank}, CPU, {torch.get_num_threads()} threads: " +
        $"default (randomized) {r.DefaultSeconds:F2} s, dense {r.DenseSeconds:F1} s (full SVD, all singular values), relative difference {r.RelativeDifference:E2}, residual / optimal {r.ResidualRatio:F5}");
    Console.WriteLine("| route | oversampling | power iterations | range finder s | relative difference | residual / optimal |");
    Console.WriteLine("|---|---:|---:|---:|---:|---:|");
    foreach (var s in r.Settings)
        Console.WriteLine($"| {s.Route} | {s.Oversampling} | {s.PowerIterations} | {s.Seconds:F2} | {s.RelativeDifference:E2} | {s.ResidualRatio:F5} |");
}

static void RunExtraction(string[] args, Options o)
{
    int i = Array.IndexOf(args, "--layers");
    int layers = i >= 0 ? int.Parse(args[i + 1]) : 1;
    // On a shared machine more libtorch threads than free cores thrash in every small LAPACK call (a QR of
    // 11008 x 26 took 2 s on two busy cores with two threads, 2 ms with one).
    int t = Array.IndexOf(args, "--threads");
    int threads = t >= 0 ? int.Parse(args[t + 1]) : Environment.ProcessorCount;
    var methods = Array.IndexOf(args, "--methods") >= 0 ? o.Methods : ExtractionBench.Methods;
    var (tuned, basePath) = ExtractionBench.Prepare(Path.GetFullPath(o.Data), layers);
    Console.WriteLine($"# {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}, Llama-2-7B shapes, {layers} of 32 layers, bfloat16 weights, rank {o.Rank}, device {o.Device}, {threads} libtorch threads");
    Console.WriteLine("| method | device | modules | seconds | seconds per layer | whole 7B (x32 layers), min | peak RSS (MiB) | mean energy kept |");
    Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|");
    foreach (var method in methods)
    {
        var r = ExtractionBench.RunIsolated(method, tuned, basePath, o.Rank, o.Device, threads);
        Console.WriteLine($"| {r.Method} | {r.Device} | {r.Modules} | {r.Seconds:F1} | {r.Seconds / layers:F1} | {r.Seconds / layers * 32 / 60:F1} | {r.PeakBytes >> 20} | {r.MeanEnergyKept:F4} |");
    }
}

static void RunMemory(Options o)
{
    var shape = ModelShape.Parse(o.Shape == "7b" ? "70b" : o.Shape);
    string data = Directory.CreateTempSubdirectory("loralego-bench-").FullName;
    try
    {
        var dirs = SyntheticAdapters.Generate(data, shape, o.Adapters, o.Rank, o.DType, seed: 7);
        Console.WriteLine($"# {shape.Name}: {o.Adapters} adapters r{o.Rank} {o.DType}, generated in {data} and deleted afterwards");
        Console.WriteLine("| method | seconds | peak RSS (MiB) | input MiB | output MiB |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        foreach (var method in o.Methods)
        {
            var r = MergeRun.RunIsolated(method, dirs, Path.Combine(data, "out-" + method), o.Device);
            Console.WriteLine($"| {r.Method} | {r.Seconds:F1} | {r.PeakBytes >> 20} | {r.InputBytes >> 20} | {r.OutputBytes >> 20} |");
        }
    }
    finally
    {
        Directory.Delete(data, recursive: true);
    }
}

static void RunForward(Options o)
{
    string fixture = Path.Combine(FindRepoRoot(), "tests", "fixtures", "peft-tiny-llama", "base");
    string oneB = SyntheticModel.Write(Path.Combine(Path.GetFullPath(o.Data), "llama-1b-bf16"), SyntheticModel.Llama1B, SafetensorsDType.BF16);
    Console.WriteLine("| model | dtype | device | batch x sequence | tokens/s |");
    Console.WriteLine("|---|---|---|---|---:|");
    foreach (var (name, path, dtype, batch, seq, iterations) in new[]
    {
        ("tiny fixture Llama", fixture, ModelDType.Float32, 2, 16, 50),
        ("synthetic Llama-1B", oneB, ModelDType.BFloat16, 1, 128, 5),
        ("synthetic Llama-1B", oneB, ModelDType.Float32, 1, 128, 5),
        ("synthetic Llama-1B", oneB, ModelDType.BFloat16, 8, 512, 3),
    })
    {
        using var model = BaseModel.Load(path, new BaseModelOptions { DType = dtype, Device = o.Device });
        var r = ForwardBenchmark.Measure(model, batch, seq, iterations);
        Console.WriteLine($"| {name} | {dtype} | {model.Device.type} | {batch} x {seq} | {r.TokensPerSecond:F0} |");
    }
}

static void RunMole(Options o)
{
    string tiny = Path.Combine(FindRepoRoot(), "tests", "fixtures", "peft-tiny-llama");
    string data = Path.GetFullPath(o.Data);
    string oneB = SyntheticModel.Write(Path.Combine(data, "llama-1b-bf16"), SyntheticModel.Llama1B, SafetensorsDType.BF16);
    var oneBExperts = SyntheticAdapters.Generate(data, ModelShape.Llama1B, 2, 16, SafetensorsDType.BF16, seed: 21);
    Console.WriteLine("| model | experts | gate input | dtype | device | batch x sequence | steps/s | tokens/s |");
    Console.WriteLine("|---|---|---|---|---|---|---:|---:|");
    foreach (var (name, path, experts, dtype, batch, seq, steps) in new[]
    {
        ("tiny fixture Llama", Path.Combine(tiny, "base"), new[] { Path.Combine(tiny, "adapters", "a"), Path.Combine(tiny, "adapters", "b") }, ModelDType.Float32, 8, 24, 20),
        ("synthetic Llama-1B", oneB, oneBExperts.ToArray(), ModelDType.BFloat16, 4, 128, 3),
    })
    {
        using var model = BaseModel.Load(path, new BaseModelOptions { DType = dtype, Device = o.Device });
        // Likelihood gates run the model once per expert before every pass; the default prompt gate
        // (one for the model) pools over the row with a seq x seq attention per pass.
        foreach (var (gateInput, granularity) in new[] { (GateInput.ExpertOutputs, MixtureGranularity.Layer), (GateInput.Likelihood, MixtureGranularity.Layer), (GateInput.Prompt, MixtureGranularity.Model) })
        {
            var mixture = LoraMixture.Create(experts.Select(e => PeftAdapterReader.Read(e)).ToList(), granularity, gateInput: gateInput);
            var r = GateTrainingBenchmark.Measure(model, mixture, batch, seq, steps);
            Console.WriteLine($"| {name} | {experts.Length} x r{mixture.Experts[0].Rank} | {gateInput} ({granularity}) | {dtype} | {model.Device.type} | {batch} x {seq} | {r.StepsPerSecond:F2} | {r.TokensPerSecond:F0} |");
        }
    }
}

static string FindRepoRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "LoraLego.psd1")))
        dir = dir.Parent;
    return dir?.FullName ?? throw new InvalidOperationException("run the benchmark from inside the repository");
}

internal sealed record Options(string Shape, int Adapters, int Rank, SafetensorsDType DType, ComputeDevice Device, string Data, string[] Methods, int Threads)
{
    /// <summary>The value after --<paramref name="name"/> in <paramref name="args"/>, or <paramref name="fallback"/>.</summary>
    public static string Argument(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, "--" + name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    public static Options Parse(string[] args)
    {
        string Get(string name, string fallback) => Argument(args, name, fallback);
        return new Options(Get("shape", "7b"), int.Parse(Get("adapters", "8")), int.Parse(Get("rank", "16")),
            Enum.Parse<SafetensorsDType>(Get("dtype", "F16")), ComputeDevice.Parse(Get("device", "Cpu")),
            Get("data", "bench/out/data"), Get("methods", string.Join(",", MergeRun.Methods)).Split(','),
            int.Parse(Get("threads", Environment.ProcessorCount.ToString())));
    }
}
