using LoraLego.Core.Clustering;
using LoraLego.Core.Merging;
using LoraLego.Core.Tests.Merging;
using static LoraLego.Core.Tests.Lego.TestAdapters;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Lego;

/// <summary>
/// A Lego merge clusters one module per libtorch thread, side by side: the merged adapter, its progress and its verbose
/// lines are the same, in the same order, whatever the thread count.
/// </summary>
[Collection(nameof(LibTorchThreadCount))]
public class LegoThreadCountTests
{
    [Fact]
    public void A_merge_at_one_two_and_four_threads_is_identical_and_reports_its_modules_in_order()
    {
        MergeInput[] inputs = [new(Fixture("a")), new(Fixture("b")), new(Fixture("c"), 0.5)];
        // Fewer clusters than units, so that k-means and its Gram products run on every module.
        var options = new LegoOptions { Clustering = new RankClusterOptions { K = 5 } };
        int before = get_num_threads();
        try
        {
            var runs = new[] { 1, 2, 4 }.Select(threads =>
            {
                set_num_threads(threads);
                var progress = new List<string>();
                var verbose = new List<string>();
                var merged = LegoMerge.Merge(inputs, options, verbose: verbose.Add, progress: p => progress.Add($"{p.ModuleIndex}/{p.ModuleCount} {p.ModuleKey}"));
                return (Merged: merged, Progress: progress, Verbose: verbose);
            }).ToList();
            var keys = inputs[0].Adapter.Modules.Select(m => m.Key).ToList();
            Assert.Equal(keys.Select((key, i) => $"{i}/{keys.Count} {key}"), runs[0].Progress);
            Assert.Equal(keys, runs[0].Verbose.Select(line => line[..line.IndexOf(':')]));
            foreach (var run in runs.Skip(1))
            {
                AssertIdentical(runs[0].Merged, run.Merged);
                Assert.Equal(runs[0].Progress, run.Progress);
                Assert.Equal(runs[0].Verbose, run.Verbose);
            }
        }
        finally
        {
            set_num_threads(before);
        }
    }
}
