namespace LoraLego.Core.Surgery;

/// <summary>What resizing or extracting did to one module: its rank before (0 for a module extracted from weights) and after, and the fraction of the update's squared Frobenius norm kept.</summary>
public sealed record ModuleRankChange(string Module, int OldRank, int NewRank, double EnergyKept)
{
    public override string ToString() => $"{Module}: rank {OldRank} -> {NewRank}, energy kept {EnergyKept:P3}";
}
