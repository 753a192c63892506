using LoraLego.Core;
using LoraLego.Core.Compute;
using LoraLego.Core.Merging;
using LoraLego.Core.Surgery;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Cuda.Tests;

public class CudaDeviceTests
{
    [Fact]
    public void Cuda_n_names_that_gpu_and_one_past_the_last_is_refused()
    {
        Cuda.Require();
        var first = DeviceSelector.Resolve(ComputeDevice.Parse("cuda:0"));
        Assert.Equal(DeviceType.CUDA, first.type);
        Assert.Equal(0, first.index);
        int count = (int)cuda.device_count();
        var e = Assert.Throws<LoraException>(() => DeviceSelector.Resolve(ComputeDevice.CudaAt(count)));
        Assert.Equal(LoraErrorKind.InvalidArgument, e.Kind);
    }

    // The sketch comes from a CPU generator on every device, so a seed gives the same factors on the GPU.
    [Fact]
    public void Randomized_svd_on_cuda_equals_the_cpu_for_a_seed()
    {
        Cuda.Require();
        using var scope = NewDisposeScope();
        var matrix = LowRankWithNoise(new Generator(3, CPU));
        var onCpu = RandomizedSvd.Of(matrix, 8, 10, 2, new Generator(5, CPU));
        var onGpu = RandomizedSvd.Of(matrix.cuda(), 8, 10, 2, new Generator(5, CPU));
        AssertClose(onCpu, onGpu);
    }

    // A start (the trimming merges' untrimmed-sum directions) crosses to the device and replaces the same sketch columns there.
    [Fact]
    public void A_started_randomized_svd_on_cuda_equals_the_cpu()
    {
        Cuda.Require();
        using var scope = NewDisposeScope();
        var source = new Generator(4, CPU);
        var matrix = LowRankWithNoise(source);
        var start = (linalg.qr(randn([500, 10], ScalarType.Float64, generator: source)).Q.t().contiguous().data<double>().ToArray(), 10);
        var onCpu = RandomizedSvd.Of(matrix, 8, 10, 1, new Generator(5, CPU), start);
        var onGpu = RandomizedSvd.Of(matrix.cuda(), 8, 10, 1, new Generator(5, CPU), start);
        AssertClose(onCpu, onGpu);
    }

    // Rank 12 under a little noise: the leading 8 directions are well separated, so both devices find the same ones.
    private static Tensor LowRankWithNoise(Generator source) =>
        randn([700, 12], generator: source).matmul(randn([12, 500], generator: source)).add_(randn([700, 500], generator: source).mul_(1e-3));

    private static void AssertClose(SingularFactors onCpu, SingularFactors onGpu)
    {
        var cpuUpdate = onCpu.Truncate(8, ScalarType.Float64);
        var gpuUpdate = onGpu.Truncate(8, ScalarType.Float64);
        var expected = cpuUpdate.B.matmul(cpuUpdate.A);
        double difference = gpuUpdate.B.cpu().matmul(gpuUpdate.A.cpu()).sub(expected).norm().item<double>() / expected.norm().item<double>();
        Assert.True(difference < 1e-4, $"relative difference {difference}");
    }
}
