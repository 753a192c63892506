using static TorchSharp.torch;

namespace LoraLego.Core.Mixture;

/// <summary>
/// MoLE's gating balance loss: with q_i the mean gate value of expert i over all gates and
/// tokens, L_balance = -log(prod_i q_i) = -sum_i log q_i, smallest when every expert gets an
/// equal share. Computed from the gate values themselves, so it carries gradient to the gates
/// (the paper's public code detaches them, which leaves the term inert).
/// </summary>
public static class BalanceLoss
{
    /// <summary>q: each expert's mean gate value over all gates and real tokens, [experts].</summary>
    /// <param name="gateValues">One tensor per gate, [batch, seq, experts].</param>
    /// <param name="tokenMask">[batch, seq], 1 at real tokens and 0 at padding; null counts every position.</param>
    public static Tensor ExpertShares(IReadOnlyList<Tensor> gateValues, Tensor? tokenMask = null)
    {
        ArgumentNullException.ThrowIfNull(gateValues);
        if (gateValues.Count == 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, "the balance loss needs the values of at least one gate");
        using var scope = NewDisposeScope();
        var weights = tokenMask?.to(ScalarType.Float32).unsqueeze(-1);
        var total = gateValues.Select(v => (weights is null ? v : v.mul(weights)).sum([0L, 1L])).Aggregate((a, b) => a.add(b));
        double positions = weights is null ? gateValues[0].shape[0] * gateValues[0].shape[1] : weights.sum().item<float>();
        return total.div(positions * gateValues.Count).MoveToOuterDisposeScope();
    }

    /// <summary>-sum_i log q_i over the enabled experts (a disabled expert's q is 0 by construction).</summary>
    /// <param name="gateValues">One tensor per gate, [batch, seq, experts].</param>
    /// <param name="tokenMask">[batch, seq], 1 at real tokens and 0 at padding; null counts every position.</param>
    /// <param name="enabled">Which experts count; null counts all.</param>
    /// <returns>A scalar tensor, differentiable with respect to <paramref name="gateValues"/>.</returns>
    public static Tensor Compute(IReadOnlyList<Tensor> gateValues, Tensor? tokenMask = null, IReadOnlyList<bool>? enabled = null)
    {
        using var scope = NewDisposeScope();
        var shares = ExpertShares(gateValues, tokenMask);
        if (enabled is not null)
            shares = shares.index_select(0, tensor(Enumerable.Range(0, enabled.Count).Where(i => enabled[i]).Select(i => (long)i).ToArray(), device: shares.device));
        return shares.log().sum().neg().MoveToOuterDisposeScope();
    }
}
