using LoraLego.Fuzz;

// LoraLego.Fuzz [--target all|safetensors|config|jsonl|manifest] [--executions N] [--seconds S] [--seed S]
//               [--findings DIR] [--corpus-out DIR] [--repo DIR]
// Prints one line per target and exits 1 when any input crashed a reader or hung it.
var options = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
for (int i = 0; i + 1 < args.Length; i += 2)
    options[args[i].TrimStart('-')] = args[i + 1];
string repo = options.GetValueOrDefault("repo") ?? FindRepo(AppContext.BaseDirectory);
string which = options.GetValueOrDefault("target") ?? "all";
int executions = int.Parse(options.GetValueOrDefault("executions") ?? "2000");
TimeSpan? budget = options.TryGetValue("seconds", out var s) ? TimeSpan.FromSeconds(double.Parse(s)) : null;
ulong seed = ulong.Parse(options.GetValueOrDefault("seed") ?? "1");
if (options.TryGetValue("libfuzzer", out var libFuzzerTarget) || options.TryGetValue("afl", out libFuzzerTarget))
{
    // Coverage-guided: run under libfuzzer-dotnet or afl-fuzz after `sharpfuzz LoraLego.Core.dll` (docs/reliability.md).
    var single = FuzzTarget.All(repo).Single(t => t.Name == libFuzzerTarget);
    string work = Directory.CreateTempSubdirectory("loralego-sharpfuzz").FullName;
    if (options.ContainsKey("libfuzzer"))
        SharpFuzz.Fuzzer.LibFuzzer.Run(span => SharpFuzzEntry.Run(single, span.ToArray(), work));
    else
        SharpFuzz.Fuzzer.OutOfProcess.Run(stream =>
        {
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            SharpFuzzEntry.Run(single, buffer.ToArray(), work);
        });
    return 0;
}
var targets = FuzzTarget.All(repo).Where(t => which == "all" || t.Name == which).ToList();
if (targets.Count == 0)
{
    Console.Error.WriteLine($"no target '{which}' (safetensors, config, jsonl, manifest, all)");
    return 2;
}
int failures = 0;
foreach (var target in targets)
{
    var report = FuzzRunner.Run(target, executions, seed, null, options.GetValueOrDefault("findings"), budget, options.GetValueOrDefault("corpus-out"));
    Console.WriteLine(report);
    foreach (var finding in report.Crashes.Concat(report.Hangs).Take(5))
        Console.WriteLine($"  {finding.Kind} at execution {finding.Execution}: {finding.Message.Split('\n')[0]}");
    failures += report.Crashes.Count + report.Hangs.Count;
    (target as IDisposable)?.Dispose();
}
return failures == 0 ? 0 : 1;

static string FindRepo(string from)
{
    for (var dir = new DirectoryInfo(from); dir is not null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "LoraLego.slnx")))
            return dir.FullName;
    throw new DirectoryNotFoundException("the repository (LoraLego.slnx) is not above " + from);
}
