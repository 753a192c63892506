using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>TIES' elect and disjoint-merge steps over tasks stacked on dimension 0.</summary>
internal static class SignElection
{
    /// <summary>
    /// True where a task's entry has the elected sign. PEFT elects from the trimmed values before the weights are
    /// applied, and a zero entry (trimmed or dropped) never agrees, so it does not count in the average.
    /// </summary>
    public static Tensor AgreementMask(Tensor stackedTasks, MajoritySign method)
    {
        using var scope = NewDisposeScope();
        var signs = stackedTasks.sign();
        var votes = method == MajoritySign.Total ? stackedTasks.sum(dim: 0L) : signs.sum(dim: 0L);
        var elected = where(votes >= 0, ones_like(votes), ones_like(votes).neg_());
        return signs.eq(elected).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The mean, per entry, of the weighted tasks that agree with the elected sign (an average, not a sum: two
    /// agreeing adapters do not double an entry).
    /// </summary>
    public static Tensor DisjointMean(Tensor stackedWeightedTasks, Tensor agreement)
    {
        using var scope = NewDisposeScope();
        var kept = stackedWeightedTasks.mul(agreement).sum(dim: 0L);
        var count = agreement.to(stackedWeightedTasks.dtype).sum(dim: 0L).clamp_(min: 1.0);
        return kept.div_(count).MoveToOuterDisposeScope();
    }
}
