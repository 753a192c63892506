using System.Diagnostics;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;

namespace LoraLego.Bench;

/// <summary>A seeded DARE merge of the modules whose keys contain a filter: a few 7B modules timed in CPU time, and bytes to compare between builds.</summary>
public sealed record DareModulesResult(string Method, int Modules, double Seconds, double CpuSeconds);

public static class DareModules
{
    public static DareModulesResult Run(string method, string output, long seed, string keyFilter, IReadOnlyList<string> adapterDirs)
    {
        var inputs = adapterDirs.Select(d => new MergeInput(PeftAdapterReader.Read(d).WithModules(k => k.Contains(keyFilter, StringComparison.Ordinal)))).ToList();
        var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        var merged = StandardMerge.Merge(inputs, Enum.Parse<MergeMethod>(method), new MergeOptions
        {
            Rank = method.EndsWith("Svd", StringComparison.Ordinal) ? 16 : null,
            Density = 0.5,
            Seed = method.StartsWith("Dare", StringComparison.Ordinal) ? seed : null,
        });
        PeftAdapterWriter.Write(merged, output, inputs[0].Adapter.DType);
        process.Refresh();
        return new DareModulesResult(method, merged.ModuleCount, sw.Elapsed.TotalSeconds, (process.TotalProcessorTime - cpu).TotalSeconds);
    }
}
