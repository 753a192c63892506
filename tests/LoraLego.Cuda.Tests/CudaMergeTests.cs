using LoraLego.Core.Compute;
using LoraLego.Core.Merging;
using LoraLego.Core.Tests.Merging;

namespace LoraLego.Cuda.Tests;

public class CudaMergeTests
{
    [Theory]
    [InlineData("svd_abc")]
    [InlineData("ties_svd_abc")]
    [InlineData("cat_abc")]
    [InlineData("linear_ab")]
    [InlineData("ties_ab")]
    [InlineData("magprune_svd_abc")]
    public void Merges_on_cuda_reproduce_peft(string name)
    {
        Cuda.Require();
        var call = MergeFixtures.Get(name);
        var merged = StandardMerge.Merge(call.Inputs(), call.Method, new MergeOptions
        {
            Name = name, Density = call.Density, Rank = call.SvdRank, MajoritySign = call.MajoritySign, DenseSvd = call.Options().DenseSvd,
            Device = ComputeDevice.Cuda,
        });
        double worst = MergeFixtures.WorstError(merged, MergeFixtures.IntendedDeltas(name));
        Assert.True(worst < 1e-5, $"{name} on CUDA: worst relative error {worst}");
    }

    [Fact]
    public void Linear_under_auto_runs_on_the_cpu_and_under_cuda_on_the_gpu()
    {
        Cuda.Require();
        var call = MergeFixtures.Get("linear_ab");
        LoraLego.Core.Adapters.LoraAdapter On(ComputeDevice device, List<string> log) =>
            StandardMerge.Merge(call.Inputs(), call.Method, new MergeOptions { Name = "linear_ab", Device = device, Verbose = log.Add });
        var autoLog = new List<string>();
        var cudaLog = new List<string>();
        var auto = On(ComputeDevice.Auto, autoLog);
        var onCpu = On(ComputeDevice.Cpu, []);
        var onCuda = On(ComputeDevice.Cuda, cudaLog);
        Assert.Contains(autoLog, line => line.Contains("-Device Auto runs it on the CPU"));
        Assert.DoesNotContain(cudaLog, line => line.Contains("runs it on the CPU"));
        Assert.Equal(0, MergeFixtures.WorstError(auto, MergeFixtures.Deltas(onCpu)));
        double worst = MergeFixtures.WorstError(onCuda, MergeFixtures.IntendedDeltas("linear_ab"));
        Assert.True(worst < 1e-5, $"linear on CUDA: worst relative error {worst}");
    }

    [Fact]
    public void Lego_on_cuda_equals_lego_on_the_cpu_for_a_seed()
    {
        Cuda.Require();
        var inputs = new[] { "a", "b", "c" }.Select(n => new MergeInput(MergeFixtures.Adapter(n))).ToList();
        LegoOptions On(ComputeDevice d) => new() { Clustering = new() { K = 8, Device = d, KMeans = new() { Seed = 7 } } };
        var gpu = LegoMerge.Merge(inputs, On(ComputeDevice.Cuda));
        var cpu = LegoMerge.Merge(inputs, On(ComputeDevice.Cpu));
        double worst = MergeFixtures.WorstError(gpu, MergeFixtures.Deltas(cpu));
        Assert.True(worst < 1e-4, $"worst relative difference {worst}");
    }

    [Fact]
    public void Units_clustered_side_by_side_on_cuda_equal_the_cpu()
    {
        Cuda.Require();
        var units = new[] { "a", "b", "c" }.SelectMany(n => LoraLego.Core.Units.MsuSplitter.Split(MergeFixtures.Adapter(n))).ToList();
        LoraLego.Core.Clustering.RankClusterOptions On(ComputeDevice d) => new() { K = 8, Device = d, KMeans = new() { Seed = 7 } };
        var gpu = LoraLego.Core.Clustering.RankClusterer.Cluster(units, On(ComputeDevice.Cuda)).ToList();
        var cpu = LoraLego.Core.Clustering.RankClusterer.Cluster(units, On(ComputeDevice.Cpu)).ToList();
        Assert.Equal(cpu.Select(c => c.ModuleKey), gpu.Select(c => c.ModuleKey));
        Assert.All(cpu.Zip(gpu), pair => Assert.Equal(pair.First.Assignments, pair.Second.Assignments));
    }

    [Fact]
    public void Dare_on_cuda_repeats_for_a_seed_and_matches_the_cpu()
    {
        Cuda.Require();
        var inputs = new[] { "a", "b" }.Select(n => new MergeInput(MergeFixtures.Adapter(n))).ToList();
        var options = new MergeOptions { Density = 0.5, Seed = 11, Device = ComputeDevice.Cuda };
        var first = StandardMerge.Merge(inputs, MergeMethod.DareLinearSvd, options);
        var second = StandardMerge.Merge(inputs, MergeMethod.DareLinearSvd, options);
        var onCpu = StandardMerge.Merge(inputs, MergeMethod.DareLinearSvd, new MergeOptions { Density = 0.5, Seed = 11, Device = ComputeDevice.Cpu });
        Assert.Equal(0, MergeFixtures.WorstError(first, MergeFixtures.Deltas(second)));
        double acrossDevices = MergeFixtures.WorstError(first, MergeFixtures.Deltas(onCpu));
        Assert.True(acrossDevices < 1e-5, $"the same seed on the CPU differs by {acrossDevices}");
    }
}
