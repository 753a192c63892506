namespace LoraLego.Core.Merging;

/// <summary>What a LoRA-LEGO merge's update stands for, before output reweighting.</summary>
public enum LegoTarget
{
    /// <summary>
    /// The weighted MEAN of the N inputs, (1 / N) sum_i w_i dW_i: each cluster's term times its
    /// member count, over N. A cluster of N near-identical units (one per input) contributes one of
    /// them, as in the paper, so merging an adapter with itself N times gives it back; with every
    /// unit kept it is exactly PEFT's cat with weights w_i / N.
    /// </summary>
    Mean,

    /// <summary>
    /// The weighted SUM of the inputs, sum_i w_i dW_i: each cluster's term times its member count,
    /// like the Cat merge (and PEFT's cat): use it to compare with Cat like for like.
    /// </summary>
    Sum,
}
