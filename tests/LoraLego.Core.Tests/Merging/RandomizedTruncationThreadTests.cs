using LoraLego.Core.Adapters;
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

    [Theory]
    [InlineData(MergeMethod.TiesSvd)]
    [InlineData(MergeMethod.DareTiesSvd)]
    public void Modules_merged_side_by_side_come_out_in_order_with_the_bytes_of_one_at_a_time(MergeMethod method)
    {
        var inputs = SeveralModules();
        int before = get_num_threads();
        try
        {
            var one = Merged(inputs, method, threads: 1);
            foreach (int threads in new[] { 2, 4 })
            {
                var sideBySide = Merged(inputs, method, threads);
                Assert.Equal(one.Keys, sideBySide.Keys);
                Assert.Equal(one.Lines, sideBySide.Lines);
                for (int i = 0; i < one.Factors.Count; i++)
                    Assert.True(one.Factors[i].SequenceEqual(sideBySide.Factors[i]), $"{one.Keys[i / 2]} at {threads} threads");
            }
            Assert.Contains(one.Lines, l => l.Contains("only in t0, t1"));
        }
        finally
        {
            set_num_threads(before);
        }
    }

    private static (List<string> Keys, List<string> Lines, List<byte[]> Factors) Merged(List<MergeInput> inputs, MergeMethod method, int threads)
    {
        set_num_threads(threads);
        var lines = new List<string>();
        var merged = StandardMerge.Merge(inputs, method, new MergeOptions { Density = 0.5, Rank = 8, Seed = method == MergeMethod.DareTiesSvd ? 7 : null, Verbose = lines.Add });
        var factors = new List<byte[]>();
        foreach (var module in merged.Modules)
        {
            using var a = module.A.LoadFloat32();
            using var b = module.B.LoadFloat32();
            factors.Add(a.bytes.ToArray());
            factors.Add(b.bytes.ToArray());
        }
        return (merged.Modules.Select(m => m.Key).ToList(), lines, factors);
    }

    // Three rank-8 adapters of six modules of three shapes, each large enough for the range finder's row-block passes
    // (over twice its 32 sketch columns); the last module only in the first two.
    private static List<MergeInput> SeveralModules() => Enumerable.Range(0, 3).Select(i =>
    {
        var g = manual_seed(500 + i);
        var modules = Enumerable.Range(0, 6).Select(m =>
        {
            var (outFeatures, inFeatures) = (m % 3) switch { 0 => (96, 72), 1 => (80, 160), _ => (130, 70) };
            return LoraModule.FromFactors($"model.layers.{m}.self_attn.q_proj", randn(8, inFeatures, generator: g).div_(10),
                randn(outFeatures, 8, generator: g).div_(10), 2.0);
        }).Where((_, m) => m < 5 || i < 2).ToList();
        var config = new AdapterConfig(new System.Text.Json.Nodes.JsonObject { ["r"] = 8, ["lora_alpha"] = 16 });
        return new MergeInput(new LoraAdapter($"t{i}", null, "PEFT", config, modules));
    }).ToList();

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
