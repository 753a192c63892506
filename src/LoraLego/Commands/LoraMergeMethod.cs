using LoraLego.Core.Merging;

namespace LoraLego.Commands;

/// <summary>Merge-Lora's methods: LoRA-LEGO and every combination type of PEFT's add_weighted_adapter.</summary>
public enum LoraMergeMethod
{
    Lego,
    Linear,
    Cat,
    Svd,
    Ties,
    TiesSvd,
    DareLinear,
    DareTies,
    DareLinearSvd,
    DareTiesSvd,
    MagnitudePrune,
    MagnitudePruneSvd,
}

internal static class LoraMergeMethods
{
    public static MergeMethod ToStandard(this LoraMergeMethod method) =>
        Enum.Parse<MergeMethod>(method.ToString());
}
