using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;

namespace LoraLego.Core.Tests.Merging;

/// <summary>Core merges run on several threads at once (as in PowerShell's ForEach-Object -Parallel) give what each gives alone.</summary>
public sealed class ConcurrentMergeTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("loralego-concurrent-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void Four_methods_merged_on_parallel_threads_write_the_bytes_they_write_one_after_another()
    {
        // Adapters are read before the threads start: the fixture cache is the test's, not the module's.
        var ab = new[] { new MergeInput(MergeFixtures.Adapter("a"), 0.7), new MergeInput(MergeFixtures.Adapter("b"), 0.3) };
        var abd = new[] { new MergeInput(MergeFixtures.Adapter("a"), 1), new MergeInput(MergeFixtures.Adapter("b"), 1), new MergeInput(MergeFixtures.Adapter("d"), 1) };
        var acd = new[] { new MergeInput(MergeFixtures.Adapter("a"), 1), new MergeInput(MergeFixtures.Adapter("c"), 1), new MergeInput(MergeFixtures.Adapter("d"), 1) };
        var merges = new Func<LoraAdapter>[]
        {
            () => LegoMerge.Merge(abd, new LegoOptions { Clustering = new() { K = 8, KMeans = new() { Seed = 1 } } }),
            () => StandardMerge.Merge(ab, MergeMethod.Linear),
            () => StandardMerge.Merge(abd, MergeMethod.DareTies, new MergeOptions { Density = 0.5, Seed = 3 }),
            () => StandardMerge.Merge(acd, MergeMethod.Svd, new MergeOptions { Rank = 8 }),
        };
        var alone = merges.Select((merge, i) => Export(merge(), $"alone-{i}")).ToList();

        // Each merge twice, eight threads: two copies of one method also run side by side.
        var together = new byte[merges.Length * 2][];
        Parallel.For(0, together.Length, new ParallelOptions { MaxDegreeOfParallelism = together.Length },
            i => together[i] = Export(merges[i % merges.Length](), $"together-{i}"));

        for (int i = 0; i < together.Length; i++)
            Assert.True(alone[i % merges.Length].AsSpan().SequenceEqual(together[i]), $"merge {i % merges.Length} on thread {i}");
        Assert.Equal(merges.Length, alone.Select(Convert.ToHexString).Distinct().Count());
    }

    private byte[] Export(LoraAdapter adapter, string name)
    {
        string folder = Path.Combine(_root, name);
        PeftAdapterWriter.Write(adapter, folder);
        return File.ReadAllBytes(Path.Combine(folder, PeftAdapterReader.ModelFileName));
    }
}
