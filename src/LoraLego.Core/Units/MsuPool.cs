namespace LoraLego.Core.Units;

/// <summary>
/// Every unit of one module from every adapter that targets it (LoRA-LEGO step 1, the pool that
/// is clustered). Built once per module, so shapes are checked once, naming the module.
/// </summary>
public sealed class MsuPool
{
    public MsuPool(string moduleKey, IReadOnlyList<Msu> units)
    {
        if (units.Count == 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, moduleKey, "no units to pool");
        var first = units[0];
        foreach (var u in units)
        {
            if (u.ModuleKey != moduleKey)
                throw new LoraException(LoraErrorKind.InvalidArgument, moduleKey, $"unit {u} belongs to another module");
            if (u.InFeatures != first.InFeatures || u.OutFeatures != first.OutFeatures)
                throw new LoraException(LoraErrorKind.ShapeMismatch, moduleKey,
                    $"adapter '{u.Adapter}' has a {u.OutFeatures}x{u.InFeatures} update but adapter '{first.Adapter}' has {first.OutFeatures}x{first.InFeatures}");
            if (u.FanInFanOut != first.FanInFanOut)
                throw new LoraException(LoraErrorKind.ShapeMismatch, moduleKey,
                    $"adapters '{first.Adapter}' and '{u.Adapter}' disagree on fan_in_fan_out");
            if (u.Kernel != first.Kernel)
                throw new LoraException(LoraErrorKind.ShapeMismatch, moduleKey,
                    $"adapter '{first.Adapter}' adapts it with kernel {first.Kernel?.ToString() ?? "none (linear)"} but '{u.Adapter}' with {u.Kernel?.ToString() ?? "none (linear)"}");
        }
        ModuleKey = moduleKey;
        Units = units;
        InFeatures = first.InFeatures;
        OutFeatures = first.OutFeatures;
        FanInFanOut = first.FanInFanOut;
        Kernel = first.Kernel;
        // One rank per contributing adapter, not per unit, so a rank-16 input counts once.
        MeanInputRank = units.GroupBy(u => u.Adapter).Average(g => (double)g.First().SourceRank);
    }

    public string ModuleKey { get; }

    public IReadOnlyList<Msu> Units { get; }

    public int InFeatures { get; }

    public int OutFeatures { get; }

    public bool FanInFanOut { get; }

    public Adapters.ConvKernel? Kernel { get; }

    /// <summary>The mean rank of the contributing adapters' modules: the r of the output reweighting sqrt(r / k).</summary>
    public double MeanInputRank { get; }

    public int Count => Units.Count;

    /// <summary>Groups a stream of units (any adapters, any modules) into pools, in order of first appearance.</summary>
    public static IEnumerable<MsuPool> FromUnits(IEnumerable<Msu> units) =>
        units.GroupBy(u => u.ModuleKey, StringComparer.Ordinal).Select(g => new MsuPool(g.Key, g.ToList()));

    public override string ToString() => $"{ModuleKey}: {Count} units";
}
