using LoraLego.Core.Models;
using static TorchSharp.torch;

namespace LoraLego.Core.Mixture;

/// <summary>
/// What gates with <see cref="GateInput.Likelihood"/> read: before each forward pass of the
/// mixture, the model runs once per expert with that expert alone, and each expert's
/// log-likelihood of every row up to each token is kept, centred over the experts.
/// </summary>
internal sealed class ExpertLikelihoods(BaseModel model, int expertCount) : IDisposable
{
    /// <summary>While set, every gate gives this expert all the weight: the passes that measure it alone.</summary>
    public int? ForcedExpert { get; private set; }

    /// <summary>[batch, seq, experts] float32 on the model's device, no gradient: the last pass's evidence.</summary>
    public Tensor? Features { get; private set; }

    /// <summary>Runs the per-expert passes for <paramref name="inputIds"/>; does nothing when called from one of them.</summary>
    public void Prepare(Tensor inputIds)
    {
        if (ForcedExpert is not null)
            return;
        try
        {
            using var scope = NewDisposeScope();
            var ids = inputIds.to(ScalarType.Int64, model.Device);
            long rows = ids.shape[0], length = ids.shape[1];
            var perExpert = new List<Tensor>(expertCount);
            for (int i = 0; i < expertCount; i++)
            {
                // Each expert's logits (batch x seq x vocab) are let go before the next pass.
                using var pass = NewDisposeScope();
                ForcedExpert = i;
                var predicting = model.Forward(ids).narrow(1, 0, length - 1);
                // log p_i(token t | tokens before t) for t >= 1; the first token was not predicted.
                var scored = predicting.gather(-1, ids.narrow(1, 1, length - 1).unsqueeze(-1)).squeeze(-1).sub(predicting.logsumexp(-1));
                perExpert.Add(cat([zeros(rows, 1, ScalarType.Float32, model.Device), scored], 1).cumsum(1).MoveToOuterDisposeScope());
            }
            var evidence = stack(perExpert, -1);
            var centred = evidence.sub(evidence.mean([-1L], keepdim: true));
            Features?.Dispose();
            Features = centred.DetachFromDisposeScope();
        }
        finally
        {
            ForcedExpert = null;
        }
    }

    public void Dispose()
    {
        Features?.Dispose();
        Features = null;
    }
}
