using System.Diagnostics;
using System.Text.RegularExpressions;
using LoraLego.Core;

namespace LoraLego.Fuzz;

/// <summary>An input that broke the policy: a crash (an exception other than LoraException, or a message with a stack trace) or a hang.</summary>
public sealed record FuzzFinding(string Target, int Execution, string Kind, string Exception, string Message, byte[] Input);

/// <summary>What a run of one target did.</summary>
public sealed record FuzzReport(string Target, int Executions, int Seeds, int CorpusSize, int Accepted, int Rejected, int Signatures,
    IReadOnlyList<FuzzFinding> Crashes, IReadOnlyList<FuzzFinding> Hangs, TimeSpan Elapsed, IReadOnlyDictionary<string, int> RejectionsById)
{
    public override string ToString() =>
        $"{Target}: {Executions} executions in {Elapsed.TotalSeconds:F1} s ({Executions / Math.Max(Elapsed.TotalSeconds, 1e-9):F0}/s), {Seeds} seeds, corpus {CorpusSize}, " +
        $"{Accepted} accepted, {Rejected} rejected as LoraException ({string.Join(", ", RejectionsById.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key} {kv.Value}"))}), " +
        $"{Signatures} distinct outcomes, {Crashes.Count} crashes, {Hangs.Count} hangs";
}

/// <summary>
/// The fuzzing loop: every seed first as it is, then mutations of the corpus. An input whose
/// outcome (accepted, or the error's kind and message with numbers and names taken out) has not
/// been seen joins the corpus, so the run climbs into the readers' deeper checks without
/// instrumentation. Every refusal must be a LoraException whose message has no stack trace;
/// anything else is a crash, and a run longer than the hang limit is a hang.
/// </summary>
public static class FuzzRunner
{
    private const int MaxCorpus = 2000;

    public static FuzzReport Run(FuzzTarget target, int executions, ulong seed, TimeSpan? hangLimit = null, string? findingsFolder = null,
        TimeSpan? timeBudget = null, string? corpusFolder = null)
    {
        var limit = hangLimit ?? TimeSpan.FromSeconds(10);
        var seeds = target.Seeds();
        if (seeds.Count == 0)
            throw new InvalidOperationException($"{target.Name}: no seeds");
        var corpus = new List<byte[]>(seeds);
        var signatures = new HashSet<string>(StringComparer.Ordinal);
        var byId = new Dictionary<string, int>(StringComparer.Ordinal);
        var crashes = new List<FuzzFinding>();
        var hangs = new List<FuzzFinding>();
        var mutator = new Mutator(seed);
        int accepted = 0, rejected = 0, done = 0;
        string work = Path.Combine(Path.GetTempPath(), $"loralego-fuzz-{target.Name}-{Environment.ProcessId}-{seed}");
        Directory.CreateDirectory(work);
        var clock = Stopwatch.StartNew();
        try
        {
            for (; done < executions; done++)
            {
                if (timeBudget is { } budget && clock.Elapsed > budget)
                    break;
                byte[] input;
                if (done < seeds.Count)
                    input = seeds[done];
                else
                {
                    var parent = corpus[mutator.Below(corpus.Count)];
                    input = mutator.Mutate(parent, corpus[mutator.Below(corpus.Count)], Math.Max(1, target.Focus(parent)));
                }
                var one = Stopwatch.StartNew();
                string signature;
                try
                {
                    target.Run(input, work);
                    accepted++;
                    signature = "accepted";
                }
                catch (LoraException e) when (!HasStackTrace(e.Message))
                {
                    rejected++;
                    byId[e.ErrorId] = byId.GetValueOrDefault(e.ErrorId) + 1;
                    signature = $"{e.ErrorId}:{Shape(e.Detail)}";
                }
                catch (Exception e)
                {
                    var finding = new FuzzFinding(target.Name, done, "crash", e.GetType().FullName!, e.ToString(), input);
                    crashes.Add(finding);
                    Save(findingsFolder, finding);
                    signature = "crash:" + e.GetType().Name;
                }
                one.Stop();
                if (one.Elapsed > limit)
                {
                    var finding = new FuzzFinding(target.Name, done, "hang", "", $"{one.Elapsed.TotalSeconds:F1} s", input);
                    hangs.Add(finding);
                    Save(findingsFolder, finding);
                }
                if (signatures.Add(signature) && done >= seeds.Count && corpus.Count < MaxCorpus)
                {
                    corpus.Add(input);
                    if (corpusFolder is not null)
                    {
                        Directory.CreateDirectory(corpusFolder);
                        File.WriteAllBytes(Path.Combine(corpusFolder, $"{target.Name}-{done:D8}"), input);
                    }
                }
            }
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        return new FuzzReport(target.Name, done, seeds.Count, corpus.Count, accepted, rejected, signatures.Count, crashes, hangs, clock.Elapsed, byId);
    }

    /// <summary>Whether a message carries a .NET or native stack trace, which the error policy forbids.</summary>
    public static bool HasStackTrace(string message) =>
        Regex.IsMatch(message, @"(?m)^\s+at \S+\(|frame #\d+|Exception raised from");

    // The message with what varies between inputs (numbers, quoted names, paths) taken out.
    private static string Shape(string message)
    {
        var text = Regex.Replace(message, "'[^']*'|\"[^\"]*\"|\\([^)]*\\)", "_");
        text = Regex.Replace(text, @"-?\d+(\.\d+)?(e[+-]?\d+)?", "#");
        return text.Length > 120 ? text[..120] : text;
    }

    private static void Save(string? folder, FuzzFinding finding)
    {
        if (folder is null)
            return;
        Directory.CreateDirectory(folder);
        string stem = Path.Combine(folder, $"{finding.Target}-{finding.Kind}-{finding.Execution:D8}");
        File.WriteAllBytes(stem + ".bin", finding.Input);
        File.WriteAllText(stem + ".txt", $"{finding.Exception}\n{finding.Message}\n");
    }
}
