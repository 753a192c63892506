using LoraLego.Core.Models;
using static TorchSharp.torch;

namespace LoraLego.Core.Mixture;

/// <summary>
/// A mixture's contribution at one module: sum_i g_i E_i(x) over the enabled experts, with the
/// gate values g from its gate (computed here when this is the gate's input module). Owns its branches.
/// </summary>
internal sealed class GatedLoraContribution(LoraMixture mixture, GateRuntime gate, bool isGateInput, IReadOnlyList<LoraBranch?> branches)
    : ILoraContribution, IDisposable
{
    public Tensor Forward(Tensor input)
    {
        var enabled = gate.ActiveExperts();
        // A gate that reads the experts' outputs reads the disabled ones too, so masking an expert
        // changes only the softmax's denominator: the others' logits stay what the gate learned.
        bool gateReadsOutputs = isGateInput && mixture.GateInput == GateInput.ExpertOutputs;
        var outputs = branches.Select((b, i) => b is not null && (gateReadsOutputs || enabled[i]) ? b.Forward(input) : null).ToList();
        var values = isGateInput ? gate.Evaluate(input, outputs) : gate.Current(input);
        Tensor? total = null;
        for (int i = 0; i < outputs.Count; i++)
        {
            if (outputs[i] is not { } output || !enabled[i])
                continue;
            var term = output.mul(values[TensorIndex.Ellipsis, TensorIndex.Slice(i, i + 1)].to(output.dtype));
            total = total is null ? term : total.add_(term);
        }
        return total ?? zeros([.. input.shape[..^1], branches.First(b => b is not null)!.Module.OutFeatures], input.dtype, input.device);
    }

    public void Dispose()
    {
        foreach (var branch in branches)
            branch?.Dispose();
    }
}
