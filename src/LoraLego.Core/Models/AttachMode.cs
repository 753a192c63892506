namespace LoraLego.Core.Models;

/// <summary>How an adapter changes the base model.</summary>
public enum AttachMode
{
    /// <summary>Kept as separate low-rank factors: y = W x + w * scaling * B (A x). Cheap to attach and detach.</summary>
    Unmerged,

    /// <summary>Added into the weights: W + w * scaling * B A. No per-token cost; detaching restores the kept base weights.</summary>
    Merged,
}
