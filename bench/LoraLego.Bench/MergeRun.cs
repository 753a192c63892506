using System.Diagnostics;
using LoraLego.Core.Adapters;
using LoraLego.Core.Compute;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;

namespace LoraLego.Bench;

/// <summary>
/// One merge timed end to end (import, merge, export), as a user's pipeline runs it; <see cref="AgainSeconds"/>: the
/// same merge run again in the same process, as every merge after a PowerShell session's first runs (the runtime,
/// libtorch and the compiled code already loaded), null where it was not run.
/// </summary>
public sealed record MergeRunResult(string Method, string Device, double Seconds, long PeakBytes, long InputBytes, long OutputBytes, double? AgainSeconds = null,
    double? ReadSeconds = null, double? MergeSeconds = null, double? WriteSeconds = null, double[]? LaterSeconds = null,
    double CpuSeconds = 0, double GcPauseSeconds = 0, long AllocatedBytes = 0, long MinorFaults = 0, int[]? Collections = null, MergeRunCost[]? LaterCosts = null);

/// <summary>What one merge cost the process besides its wall time: CPU seconds of all its threads (user and system), the garbage
/// collector's pauses, the bytes it allocated on the managed heap, its minor page faults and the collections of each generation (0, 1, 2).</summary>
public sealed record MergeRunCost(double CpuSeconds, double GcPauseSeconds, long AllocatedBytes, long MinorFaults, int[]? Collections);

public static class MergeRun
{
    public static readonly string[] Methods = ["Lego", "Cat", "Linear", "Svd", "Ties", "TiesSvd"];

    public static MergeRunResult Run(string method, IReadOnlyList<string> adapterDirs, string output, ComputeDevice device)
    {
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var pause = GC.GetTotalPauseDuration();
        long allocated = GC.GetTotalAllocatedBytes();
        long faults = PageFaults.Minor();
        int[] Collections() => [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)];
        var collections = Collections();
        var sw = Stopwatch.StartNew();
        var inputs = adapterDirs.Select(d => new MergeInput(PeftAdapterReader.Read(d))).ToList();
        double read = sw.Elapsed.TotalSeconds;
        LoraAdapter merged = method switch
        {
            "Lego" => LegoMerge.Merge(inputs, new LegoOptions { Clustering = new() { K = 16, Device = device } }),
            _ => StandardMerge.Merge(inputs, Enum.Parse<MergeMethod>(method), new MergeOptions
            {
                Rank = method.Contains("Svd") ? 16 : null,
                // PEFT's density for every trimming method, so bench/peft-side-by-side compares like with like.
                Density = new[] { "Ties", "Dare", "Magnitude" }.Any(method.StartsWith) ? 0.5 : null,
                Device = device,
            }),
        };
        double merging = sw.Elapsed.TotalSeconds;
        PeftAdapterWriter.Write(merged, output, inputs[0].Adapter.DType);
        double seconds = sw.Elapsed.TotalSeconds;
        long inputBytes = adapterDirs.Sum(d => new FileInfo(Path.Combine(d, PeftAdapterReader.ModelFileName)).Length);
        long outputBytes = new FileInfo(Path.Combine(output, PeftAdapterReader.ModelFileName)).Length;
        return new MergeRunResult(method, DeviceSelector.Resolve(device).type.ToString(), seconds, PeakMemory.Bytes(), inputBytes, outputBytes,
            ReadSeconds: read, MergeSeconds: merging - read, WriteSeconds: seconds - merging,
            CpuSeconds: (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds, GcPauseSeconds: (GC.GetTotalPauseDuration() - pause).TotalSeconds,
            AllocatedBytes: GC.GetTotalAllocatedBytes() - allocated, MinorFaults: PageFaults.Minor() - faults,
            Collections: Collections().Zip(collections, (after, before) => after - before).ToArray());
    }

    /// <summary>Merges taking longer than this are not run again: a second run tells nothing their first does not.</summary>
    private const double AgainUnderSeconds = 20;

    /// <summary>
    /// <see cref="Run"/>, then (where <paramref name="again"/> and the first run was short) the same merge again in this process, then
    /// <paramref name="later"/> more times (<see cref="MergeRunResult.LaterSeconds"/>: merges after the runtime's tiered compilation has
    /// recompiled what the first two ran); the peak memory is the first run's, the phases (read the headers, merge, write) the second run's, and each later merge's costs are kept (<see cref="MergeRunResult.LaterCosts"/>).
    /// </summary>
    public static MergeRunResult RunTwice(string method, IReadOnlyList<string> adapterDirs, string output, ComputeDevice device, bool again, int later = 0)
    {
        var first = Run(method, adapterDirs, output, device);
        if (!again || first.Seconds > AgainUnderSeconds)
            return first;
        MergeRunResult Rerun()
        {
            Directory.Delete(output, recursive: true);
            return Run(method, adapterDirs, output, device);
        }
        var second = Rerun();
        var laterRuns = Enumerable.Range(0, later).Select(_ => Rerun()).ToArray();
        return first with
        {
            AgainSeconds = second.Seconds, ReadSeconds = second.ReadSeconds, MergeSeconds = second.MergeSeconds, WriteSeconds = second.WriteSeconds,
            LaterSeconds = later > 0 ? laterRuns.Select(r => r.Seconds).ToArray() : null,
            LaterCosts = later > 0 ? laterRuns.Select(r => new MergeRunCost(r.CpuSeconds, r.GcPauseSeconds, r.AllocatedBytes, r.MinorFaults, r.Collections)).ToArray() : null,
        };
    }

    /// <summary>Runs <see cref="RunTwice"/> in a child process, so each method's peak memory is its own; <paramref name="threads"/>: libtorch's and the fused passes' threads there.</summary>
    public static MergeRunResult RunIsolated(string method, IReadOnlyList<string> adapterDirs, string output, ComputeDevice device, int? threads = null, bool again = false,
        int later = 0) =>
        ChildRun.Json<MergeRunResult>(method, new[] { "merge-once", method, output, device.ToString() }.Concat(adapterDirs)
            .Concat(threads is { } n ? ["--threads", n.ToString()] : []).Concat(again ? ["--again"] : []).Concat(later > 0 ? ["--later", later.ToString()] : []));
}
