using System.Diagnostics;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;
using LoraLego.Core.Merging.Tuning;
using LoraLego.Core.Models;

namespace LoraLego.Bench;

/// <summary>
/// Optimize-LoraMerge's skillbench table for docs/merge-quality.md: the search tuned on train/ (all four files, or
/// their first --rows rows each), then the default merge, Cat 1/N and the result scored on each eval/ file.
/// </summary>
internal static class OptimizeSkillbench
{
    private static readonly string[] Skills = ["swap", "complement", "increment", "descend"];

    public static void Run(string[] args)
    {
        string root = Options.Argument(args, "root", "tests/fixtures/skillbench");
        int rows = int.Parse(Options.Argument(args, "rows", "0"));
        var options = new MergeSearchOptions
        {
            Budget = int.Parse(Options.Argument(args, "budget", new MergeSearchOptions().Budget.ToString())),
            Epochs = int.Parse(Options.Argument(args, "epochs", new MergeSearchOptions().Epochs.ToString())),
            Seed = int.Parse(Options.Argument(args, "seed", "0")),
        };
        using var model = BaseModel.Load(Path.Combine(root, "base"), new BaseModelOptions { Device = Core.Compute.ComputeDevice.Cpu });
        var adapters = Skills.Select(s => PeftAdapterReader.Read(Path.Combine(root, "adapters", s))).ToList();
        var train = Skills.Select(s => Path.Combine(root, "train", s + ".jsonl")).ToList();
        if (rows > 0)
            train = train.Select(path => Subsample(path, rows)).ToList();
        Console.WriteLine($"# {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}, budget {options.Budget}, epochs {options.Epochs}, seed {options.Seed}, " +
            $"train rows per skill {(rows > 0 ? rows : "all")}");
        var clock = Stopwatch.StartNew();
        var result = MergeSearch.Run(model, adapters, train, options, verbose: line => Console.Error.WriteLine($"{clock.Elapsed.TotalSeconds,7:F1}s {line}"));
        double seconds = clock.Elapsed.TotalSeconds;
        var merges = new (string Name, LoraAdapter Adapter)[]
        {
            ("Merge-Lora default", LegoMerge.Merge(adapters.Select(a => new MergeInput(a, DefaultMerge.Weight)).ToList(), DefaultMerge.Lego, "default")),
            ("Cat 1/N (PEFT's best)", StandardMerge.Merge(adapters.Select(a => new MergeInput(a, 1.0 / adapters.Count)).ToList(), MergeMethod.Cat, new MergeOptions { Name = "cat" })),
            ("Optimize-LoraMerge", result.Adapter),
        };
        Console.WriteLine();
        Console.WriteLine("| merge | " + string.Join(" | ", Skills) + " | mean loss | mean exact match |");
        Console.WriteLine("|---|" + string.Concat(Skills.Select(_ => "---:|")) + "---:|---:|");
        foreach (var (name, adapter) in merges)
        {
            model.Attach(adapter);
            var scores = Skills.Select(s => PerplexityEvaluator.Evaluate(model, Path.Combine(root, "eval", s + ".jsonl"), new EvaluationOptions { BatchSize = 64 })).ToList();
            model.Detach(adapter.Name);
            Console.WriteLine($"| {name} | {string.Join(" | ", scores.Select(r => $"{r.Loss:F3} / {r.ExactMatch:F2}"))} | {scores.Average(r => r.Loss):F3} | {scores.Average(r => r.ExactMatch):F2} |");
        }
        Console.WriteLine();
        Console.WriteLine($"Search: {seconds:F0} s, {result.History.Count} evaluations, best at #{result.History.Last(s => s.IsBest).Evaluation} ({result.Best.Describe()}).");
        Console.WriteLine();
        Console.WriteLine("| # | stage | tune loss | validation loss | best | settings |");
        Console.WriteLine("|---:|---|---:|---:|---|---|");
        foreach (var step in result.History)
            Console.WriteLine($"| {step.Evaluation} | {step.Stage} | {step.TuneLoss:F4} | {step.ValidationLoss:F4} | {(step.IsBest ? "*" : "")} | {step.Settings} |");
    }

    private static string Subsample(string path, int rows)
    {
        string copy = Path.Combine(Path.GetTempPath(), $"skillbench-{rows}-{Path.GetFileName(path)}");
        File.WriteAllLines(copy, File.ReadLines(path).Take(rows));
        return copy;
    }
}
