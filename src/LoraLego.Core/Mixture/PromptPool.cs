using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Core.Mixture;

/// <summary>
/// What a <see cref="GateInput.Prompt"/> gate reads: per token, the row's normalised states pooled
/// with learned attention over its prompt, so that every token of a row is weighed by what the
/// prompt asks for and not by the answer's own tokens.
/// </summary>
/// <remarks>
/// Pooling only over the prompt leaks nothing: the prompt is all given before the first answer
/// token is predicted. A row without a known prompt (no labels, or a run of bare token ids) is
/// pooled causally, over the tokens so far, so a gate value never depends on later tokens. The
/// attention weights over the allowed positions are softmax(q . z_s); with q = 0 they are a plain mean.
/// </remarks>
internal static class PromptPool
{
    private const double NormEpsilon = 1e-5;

    /// <param name="states">[batch, seq, width] float32.</param>
    /// <param name="query">[width], the learned attention query.</param>
    /// <param name="promptLengths">Per row, its prompt's length (0: none known); null when no row has one.</param>
    /// <returns>[batch, seq, width]: layer_norm of the pooled normalised states.</returns>
    public static Tensor Features(Tensor states, Tensor query, IReadOnlyList<int>? promptLengths)
    {
        long rows = states.shape[0], length = states.shape[1], width = states.shape[2];
        var normalised = nn.functional.layer_norm(states, [width], eps: NormEpsilon);
        var scores = normalised.matmul(query.to(normalised.device));
        var allowed = Allowed(rows, length, promptLengths, states.device);
        using var minusInfinity = double.NegativeInfinity.ToScalar();
        var weights = scores.unsqueeze(1).expand(rows, length, length).masked_fill(allowed.logical_not(), minusInfinity).softmax(-1);
        return nn.functional.layer_norm(weights.bmm(normalised), [width], eps: NormEpsilon);
    }

    // [batch, seq (pooling position t), seq (pooled position s)]: s < the prompt's length for a
    // row with a prompt (whatever t), s <= t for the others. A prompt longer than the pass (a
    // truncated row) is the whole pass.
    private static Tensor Allowed(long rows, long length, IReadOnlyList<int>? promptLengths, Device device)
    {
        var positions = arange(length, ScalarType.Int64, device);
        var lastPooled = positions.view(1, length, 1).expand(rows, length, 1);
        if (promptLengths is not null)
        {
            var lastOfPrompt = tensor(promptLengths.Select(p => Math.Min(p, length) - 1L).ToArray(), device: device).view(rows, 1, 1);
            lastPooled = where(lastOfPrompt.ge(0), lastOfPrompt.expand(rows, length, 1), lastPooled);
        }
        return positions.view(1, 1, length).le(lastPooled);
    }
}
