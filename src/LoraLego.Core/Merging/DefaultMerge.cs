namespace LoraLego.Core.Merging;

/// <summary>
/// The merge Merge-Lora makes when given nothing but adapters: LoRA-LEGO with its default options at weight 1 each.
/// Optimize-LoraMerge starts its search from it, so both read the default from here and cannot drift apart.
/// </summary>
public static class DefaultMerge
{
    /// <summary>The default method; null means LoRA-LEGO, otherwise a PEFT method.</summary>
    public static MergeMethod? Method => null;

    /// <summary>The default LoRA-LEGO options (used when <see cref="Method"/> is null).</summary>
    public static LegoOptions Lego => new();

    /// <summary>The weight every adapter gets when none is given.</summary>
    public const double Weight = 1.0;
}
