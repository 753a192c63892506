using LoraLego.Core.Merging;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Merging;

/// <summary>Tests that change libtorch's thread count, which other tests' libtorch calls would see: they run alone.</summary>
[CollectionDefinition(nameof(LibTorchThreadCount), DisableParallelization = true)]
public sealed class LibTorchThreadCount;

/// <summary>
/// The randomized truncation of the trimming _svd forms on the CPU gives the same bytes at any thread count, so a merge
/// made on a laptop and on a server agree. The merge takes its thread count from libtorch's, as the cmdlets set it.
/// </summary>
[Collection(nameof(LibTorchThreadCount))]
public class RandomizedTruncationThreadTests
{
    [Theory]
    [InlineData(MergeMethod.TiesSvd)]
    [InlineData(MergeMethod.MagnitudePruneSvd)]
    public void A_modules_randomized_truncation_gives_the_same_bytes_at_one_and_two_threads(MergeMethod method)
    {
        var inputs = TrimmedSvdTests.DecayingAdapters();
        int before = get_num_threads();
        try
        {
            var (a1, b1) = Factors(inputs, method, threads: 1);
            var (a2, b2) = Factors(inputs, method, threads: 2);
            Assert.Equal(a1, a2);
            Assert.Equal(b1, b2);
        }
        finally
        {
            set_num_threads(before);
        }
    }

    private static (byte[] A, byte[] B) Factors(List<MergeInput> inputs, MergeMethod method, int threads)
    {
        set_num_threads(threads);
        Assert.Equal(threads, get_num_threads());
        var log = new List<string>();
        var merged = StandardMerge.Merge(inputs, method, new MergeOptions { Density = 0.5, Rank = 16, Verbose = log.Add });
        Assert.Contains(log, l => l.Contains("randomized range finder"));
        using var a = merged.Modules[0].A.LoadFloat32();
        using var b = merged.Modules[0].B.LoadFloat32();
        return (a.bytes.ToArray(), b.bytes.ToArray());
    }
}
