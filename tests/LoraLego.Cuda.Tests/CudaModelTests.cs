using LoraLego.Core.Compute;
using LoraLego.Core.Formats;
using LoraLego.Core.Models;
using LoraLego.Core.Tests;
using LoraLego.Core.Tests.Models;

namespace LoraLego.Cuda.Tests;

public class CudaModelTests
{
    [Theory]
    [InlineData("base", null, false)]
    [InlineData("adapter/a", "a", false)]
    [InlineData("adapter/d", "d", true)]
    public void Logits_on_cuda_match_transformers(string golden, string? adapter, bool merged)
    {
        Cuda.Require();
        using var model = BaseModel.Load(GoldenLogits.BaseModelFolder, new BaseModelOptions { Device = ComputeDevice.Cuda });
        Assert.Equal(TorchSharp.DeviceType.CUDA, model.Device.type);
        if (adapter is not null)
            model.Attach(PeftAdapterReader.Read(Fixtures.Adapter(adapter)), 1.0, merged ? AttachMode.Merged : AttachMode.Unmerged);
        using var ids = GoldenLogits.InputIds();
        using var logits = model.Forward(ids);
        using var expected = GoldenLogits.Expected(golden);
        double err = GoldenLogits.MaxAbsError(logits, expected);
        Assert.True(err < GoldenLogits.Tolerance, $"{golden}: max abs error {err}");
    }

    [Fact]
    public void Auto_picks_cuda_when_present()
    {
        Cuda.Require();
        Assert.Equal(TorchSharp.DeviceType.CUDA, DeviceSelector.Resolve(ComputeDevice.Auto).type);
    }
}
