using System.Diagnostics;
using LoraLego.Core.Adapters;
using LoraLego.Core.Clustering;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;
using LoraLego.Core.Units;
using static TorchSharp.torch;

namespace LoraLego.Bench;

/// <summary>Where a Lego merge's time goes, phase by phase, from the public steps a merge is made of (bench-only probe).</summary>
public static class MergePhases
{
    public static void Run(IReadOnlyList<string> adapterDirs, int modules)
    {
        var inputs = adapterDirs.Select(d => new MergeInput(PeftAdapterReader.Read(d))).ToList();
        var options = new LegoOptions { Clustering = new() { K = 16 } };
        var times = new Dictionary<string, double>();
        void Time(string phase, Action action)
        {
            var sw = Stopwatch.StartNew();
            action();
            times[phase] = times.GetValueOrDefault(phase) + sw.Elapsed.TotalSeconds;
        }
        var built = new List<LoraModule>();
        // The merge's own pools (factors unread until clustered). The read phase is a pass of its
        // own over every pool's factors, as the clustering reads them (Rows), so "cluster" below
        // includes that read a second time, from the page cache as the merge finds it.
        var pools = MsuSplitter.Pools(inputs, null, read: false).Take(modules).ToList();
        using var workspace = new ClusterWorkspace();
        Time("read (separate pass)", () =>
        {
            foreach (var pool in pools)
                workspace.Rows(pool);
        });
        foreach (var pool in pools)
        {
            RankCluster cluster = null!;
            Time("cluster (incl. read)", () => cluster = RankClusterer.Cluster(pool, options.Clustering, CPU, null, workspace));
            Time("build", () => built.Add(LegoMerge.BuildModule(cluster, options, adapterCount: inputs.Count)));
        }
        string output = Path.Combine(Path.GetTempPath(), "loralego-phases");
        Time("write", () => PeftAdapterWriter.Write(LoraAdapter.Create("p", inputs[0].Adapter.Config, built, null), output, SafetensorsDType.F16));
        Directory.Delete(output, true);
        Console.WriteLine($"{built.Count} modules: " + string.Join(", ", times.Select(p => $"{p.Key} {p.Value:F2} s")));
    }
}
