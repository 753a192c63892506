using LoraLego.Core.Compute;
using LoraLego.Core.Formats;
using LoraLego.Core.Models;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Models;

/// <summary>The seam a mixture of LoRA experts plugs into: per-layer contributions set directly.</summary>
public class LoraContributionSeamTests
{
    // A stand-in for a gated mixture: a per-token gate (here sigmoid of the first input feature)
    // weighing two experts' branch outputs.
    private sealed class TokenGatedPair(LoraBranch first, LoraBranch second) : ILoraContribution, IDisposable
    {
        public Tensor Forward(Tensor input)
        {
            var gate = input[.., .., ..1].sigmoid();
            return first.Forward(input).mul_(gate).add_(second.Forward(input).mul_(gate.neg().add_(1)));
        }

        public void Dispose()
        {
            first.Dispose();
            second.Dispose();
        }
    }

    private static BaseModel LoadBase() => BaseModel.Load(GoldenLogits.BaseModelFolder, new BaseModelOptions { Device = ComputeDevice.Cpu });

    [Fact]
    public void A_contribution_set_on_every_layer_replaces_attaching()
    {
        var a = PeftAdapterReader.Read(Fixtures.Adapter("a"));
        using var model = LoadBase();
        var gates = new List<TokenGatedPair>();
        foreach (var layer in model.LinearLayers)
        {
            if (a.GetModule(layer.Key) is not { } module)
                continue;
            // Both experts the same adapter: whatever the gate says, the result is adapter a.
            var gate = new TokenGatedPair(
                LoraBranch.Load("a", module, ScalarType.Float32, model.Device),
                LoraBranch.Load("a", module, ScalarType.Float32, model.Device));
            layer.Contribution = gate;
            gates.Add(gate);
        }
        using var ids = GoldenLogits.InputIds();
        using var logits = model.Forward(ids);
        using var expected = GoldenLogits.Expected("adapter/a");
        Assert.True(GoldenLogits.MaxAbsError(logits, expected) < GoldenLogits.Tolerance);

        var e = Assert.Throws<LoraException>(() => model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("b"))));
        Assert.Equal(LoraErrorKind.InvalidArgument, e.Kind);
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("b")), mode: AttachMode.Merged);

        foreach (var layer in model.LinearLayers)
            layer.Contribution = null;
        foreach (var gate in gates)
            gate.Dispose();
        using var merged = model.Forward(ids);
        using var expectedB = GoldenLogits.Expected("adapter/b");
        Assert.True(GoldenLogits.MaxAbsError(merged, expectedB) < GoldenLogits.Tolerance);
    }
}
