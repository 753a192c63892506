using LoraLego.Core.Compute;

namespace LoraLego.Cuda.Tests;

internal static class Cuda
{
    /// <summary>Skips the calling test, visibly, where TorchSharp sees no CUDA device.</summary>
    public static void Require() =>
        Assert.SkipUnless(DeviceSelector.CudaAvailable(),
            "CUDA is not available here (CPU libtorch or no GPU): this test runs on the GPU machine, see README 'CUDA'");
}
