using LoraLego.Core.Adapters;
using LoraLego.Core.Clustering;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;
using LoraLego.Core.Models;

namespace LoraLego.Bench;

/// <summary>
/// Scores merges of a skill set (skillbench's layout: base/, adapters/&lt;skill&gt;/, eval/&lt;skill&gt;.jsonl)
/// on every skill's eval rows: answer-only loss and exact match, one markdown row per merge.
/// </summary>
internal static class MergeQuality
{
    /// <summary>A merge under test: a label and how to make it from the set's adapters (weights 1/N are the caller's).</summary>
    public sealed record Candidate(string Label, Func<IReadOnlyList<LoraAdapter>, LoraAdapter?> Make);

    /// <param name="setFolder">The set, in skillbench's layout.</param>
    /// <param name="candidates">The merges to score.</param>
    /// <param name="rows">Score each skill's first this many eval rows; null for all.</param>
    public static void Run(string setFolder, IEnumerable<Candidate> candidates, int? rows = null)
    {
        var skills = Directory.GetFiles(Path.Combine(setFolder, "eval"), "*.jsonl").Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal).ToArray();
        var adapters = skills.Select(s => PeftAdapterReader.Read(Path.Combine(setFolder, "adapters", s!))).ToList();
        using var model = BaseModel.Load(Path.Combine(setFolder, "base"), new BaseModelOptions { Device = Core.Compute.ComputeDevice.Cpu });
        var eval = skills.Select(s => ReadRows(Path.Combine(setFolder, "eval", s + ".jsonl"), rows)).ToList();
        Console.WriteLine($"# {Path.GetFileName(Path.GetFullPath(setFolder))}: {adapters.Count} adapters (ranks {string.Join(", ", adapters.Select(a => a.Config.R))}), answer-only loss / exact match on {(rows is null ? "all" : $"the first {rows}")} eval/ rows per skill");
        Console.WriteLine($"| merge | {string.Join(" | ", skills)} | mean loss | mean exact |");
        Console.WriteLine($"|---|{string.Concat(skills.Select(_ => "---:|"))}---:|---:|");
        foreach (var candidate in candidates)
        {
            LoraAdapter? merged;
            try
            {
                merged = candidate.Make(adapters);
            }
            catch (Core.LoraException e)
            {
                Console.WriteLine($"| {candidate.Label} | n/a: {e.Message} |");
                continue;
            }
            if (merged is not null)
                model.Attach(merged);
            var scores = eval.Select(r => PerplexityEvaluator.Evaluate(model, r, new EvaluationOptions { BatchSize = 128 })).ToList();
            model.DetachAll();
            Console.WriteLine($"| {candidate.Label} | {string.Join(" | ", scores.Select(r => $"{r.Loss:F3} / {r.ExactMatch:F2}"))} | {scores.Average(r => r.Loss):F3} | {scores.Average(r => r.ExactMatch):F3} |");
        }
    }

    private static List<TokenRow> ReadRows(string path, int? count) =>
        File.ReadLines(path).Where(l => l.Length > 0).Take(count ?? int.MaxValue).Select(line =>
        {
            using var doc = System.Text.Json.JsonDocument.Parse(line);
            long[] Read(string name) => doc.RootElement.GetProperty(name).EnumerateArray().Select(e => e.GetInt64()).ToArray();
            return new TokenRow(Read("input_ids"), Read("labels"));
        }).ToList();

    /// <summary>
    /// Merges named on the command line: <c>base</c>, <c>lego</c> (today's default), or
    /// <c>method:key=value,...</c> with method a <see cref="MergeMethod"/> or lego and keys
    /// w (every adapter's weight; default 1/N for PEFT methods, 1 for lego, whose mean target divides by N),
    /// k, rank, density, pr, or (on/off), target (mean/sum), norm (l2/linf), space (normalized/raw).
    /// </summary>
    public static Candidate Parse(string spec)
    {
        if (spec == "base")
            return new(spec, _ => null);
        var parts = spec.Split(':', 2);
        var settings = (parts.Length > 1 ? parts[1].Split(',') : []).Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        string? Get(string key) => settings.TryGetValue(key, out var v) ? v : null;
        bool Switch(string key, bool fallback) => Get(key) is { } v ? v == "on" : fallback;
        // Lego's mean target divides by N itself, so its weights default to 1; the PEFT methods' to 1/N (PEFT's cat_avg).
        List<MergeInput> Inputs(IReadOnlyList<LoraAdapter> a, double fallback) =>
            a.Select(x => new MergeInput(x, Get("w") is { } w ? double.Parse(w, System.Globalization.CultureInfo.InvariantCulture) : fallback)).ToList();
        if (parts[0] == "lego")
        {
            var defaults = new LegoOptions();
            return new(spec, a => LegoMerge.Merge(Inputs(a, 1.0), settings.Count == 0 ? null : new LegoOptions
            {
                Clustering = defaults.Clustering with
                {
                    K = Get("k") is { } k ? int.Parse(k) : null,
                    Norm = Get("norm") == "l2" ? UnitNorm.L2 : UnitNorm.LInfinity,
                    Space = Get("space") == "raw" ? ClusteringSpace.Raw : defaults.Clustering.Space,
                },
                ParameterReweight = Switch("pr", defaults.ParameterReweight),
                OutputReweight = Switch("or", defaults.OutputReweight),
                Target = Get("target") == "sum" ? LegoTarget.Sum : defaults.Target,
            }));
        }
        var method = Enum.Parse<MergeMethod>(parts[0], ignoreCase: true);
        return new(spec, a => StandardMerge.Merge(Inputs(a, 1.0 / a.Count), method, new MergeOptions
        {
            Rank = Get("rank") is { } r ? int.Parse(r) : null,
            Density = Get("density") is { } d ? double.Parse(d, System.Globalization.CultureInfo.InvariantCulture) : null,
            Seed = method.ToString().StartsWith("Dare", StringComparison.Ordinal) ? 1 : null,
        }));
    }

}
