namespace LoraLego.Core.Merging;

/// <summary>What a LoRA-LEGO merge's update stands for, before output reweighting.</summary>
public enum LegoTarget
{
    /// <summary>
    /// The paper's: each cluster contributes its centroid once, so a cluster of N near-identical
    /// units (one per input) contributes one of them: the merge approximates the weighted MEAN of
    /// the inputs, and merging an adapter with itself N times gives it back.
    /// </summary>
    Mean,

    /// <summary>
    /// Each cluster's term is multiplied by its member count, so the merge approximates the
    /// weighted SUM of the inputs, sum_i w_i dW_i, like the Cat merge (and PEFT's cat): use it to
    /// compare with Cat like for like, with output reweighting off.
    /// </summary>
    Sum,
}
