using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>
/// The low-rank part of an <see cref="AdaptedLinear"/> layer: given the layer's input x, what to
/// add to W x + b. This is the one seam for combining adapters at run time. Attached adapters
/// use <see cref="WeightedLoraSum"/> (fixed weights); a mixture of LoRA experts plugs in its own
/// implementation that gates several <see cref="LoraBranch"/> outputs per token, and sets it on
/// each layer through <see cref="AdaptedLinear.Contribution"/>.
/// </summary>
/// <remarks>
/// Called inside the model's forward pass, under a dispose scope, so temporaries need no
/// disposing; under no_grad except while a mixture's gates train. The layer does not own the
/// contribution: whoever sets it disposes it.
/// </remarks>
public interface ILoraContribution
{
    /// <param name="input">The layer's input, [..., in_features], in the model's dtype and on its device.</param>
    /// <returns>A tensor [..., out_features] of the same dtype, added to the base layer's output.</returns>
    Tensor Forward(Tensor input);
}
