using LoraLego.Core.Models;
using static TorchSharp.torch;

namespace LoraLego.Core.Merging.Tuning;

/// <summary>
/// The contribution at one module while module scales train: sum_i w_i * m[module, i] * scaling_i * B_i (A_i x), the
/// Cat merge's update with a learnable multiplier per adapter, so what trains here is exactly what a Cat export gives.
/// Owns its branches; the multipliers belong to the trainer.
/// </summary>
internal sealed class ScaledLoraContribution(IReadOnlyList<(int Adapter, LoraBranch Branch)> branches, Tensor multipliers, int row, double[] weights)
    : ILoraContribution, IDisposable
{
    public Tensor Forward(Tensor input)
    {
        Tensor? total = null;
        foreach (var (i, branch) in branches)
        {
            var coefficient = multipliers[row, i].mul(weights[i]).to(input.dtype);
            var term = branch.Forward(input).mul(coefficient);
            total = total is null ? term : total.add_(term);
        }
        return total!;
    }

    public void Dispose()
    {
        foreach (var (_, branch) in branches)
            branch.Dispose();
    }
}
