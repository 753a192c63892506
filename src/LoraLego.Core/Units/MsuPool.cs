using static TorchSharp.torch;

namespace LoraLego.Core.Units;

/// <summary>
/// Every unit of one module from every adapter that targets it (LoRA-LEGO step 1, the pool that
/// is clustered). Built once per module, so shapes are checked once, naming the module.
/// </summary>
public sealed class MsuPool
{
    public MsuPool(string moduleKey, IReadOnlyList<Msu> units)
        : this(moduleKey, units, null)
    {
    }

    /// <summary>A merge's pool: whole modules, whose units are read as tensors when the pool is clustered.</summary>
    internal MsuPool(string moduleKey, IReadOnlyList<ModuleUnits> modules)
        : this(moduleKey, modules.SelectMany(m => m.Units).ToList(), modules)
    {
    }

    private MsuPool(string moduleKey, IReadOnlyList<Msu> units, IReadOnlyList<ModuleUnits>? modules)
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
        _modules = modules;
        InFeatures = first.InFeatures;
        OutFeatures = first.OutFeatures;
        FanInFanOut = first.FanInFanOut;
        Kernel = first.Kernel;
        // One rank per contributing adapter, not per unit, so a rank-16 input counts once.
        MeanInputRank = units.GroupBy(u => u.Adapter).Average(g => (double)g.First().SourceRank);
    }

    private readonly IReadOnlyList<ModuleUnits>? _modules;

    public string ModuleKey { get; }

    public IReadOnlyList<Msu> Units { get; }

    public int InFeatures { get; }

    public int OutFeatures { get; }

    public bool FanInFanOut { get; }

    public Adapters.ConvKernel? Kernel { get; }

    /// <summary>The mean rank of the contributing adapters' modules: the r of the output reweighting sqrt(r / k).</summary>
    public double MeanInputRank { get; }

    public int Count => Units.Count;

    /// <summary>
    /// The units, unscaled, as the rows [B[:,i]^T, A[i,:]] of one new CPU tensor (n x (out + in),
    /// in <see cref="Units"/>' order, in the modules' stored dtype or float32); the caller owns it.
    /// Whole modules are read in one piece each, not unit by unit.
    /// </summary>
    internal Tensor Rows()
    {
        using var scope = NewDisposeScope();
        Tensor rows;
        if (_modules is not null)
            rows = cat(_modules.Select(m => m.Rows()).ToList(), 0);
        else
        {
            int width = OutFeatures + InFeatures;
            var flat = new float[Units.Count * width];
            for (int i = 0; i < Units.Count; i++)
            {
                Units[i].B.CopyTo(flat.AsSpan(i * width));
                Units[i].A.CopyTo(flat.AsSpan(i * width + OutFeatures));
            }
            rows = tensor(flat, [Units.Count, width]);
        }
        return rows.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The rows of <see cref="Rows"/> as float32 (<see cref="ModuleUnits.WidenRows"/>) into <paramref name="destination"/>
    /// (<see cref="Count"/> x (out + in), row-major), without a tensor: a merge reuses one buffer for every module.
    /// </summary>
    internal void WidenRows(Span<float> destination)
    {
        int width = OutFeatures + InFeatures;
        if (_modules is not null)
        {
            int row = 0;
            foreach (var module in _modules)
            {
                module.WidenRows(destination.Slice(row * width, module.Units.Count * width), width);
                row += module.Units.Count;
            }
            return;
        }
        for (int i = 0; i < Units.Count; i++)
        {
            float[] a = Units[i].A, b = Units[i].B;
            var row = destination.Slice(i * width, width);
            for (int o = 0; o < OutFeatures; o++)
                row[o] = b[o];
            for (int c = 0; c < InFeatures; c++)
                row[OutFeatures + c] = a[c];
        }
    }

    /// <summary>Groups a stream of units (any adapters, any modules) into pools, in order of first appearance.</summary>
    public static IEnumerable<MsuPool> FromUnits(IEnumerable<Msu> units) =>
        units.GroupBy(u => u.ModuleKey, StringComparer.Ordinal).Select(g => new MsuPool(g.Key, g.ToList()));

    public override string ToString() => $"{ModuleKey}: {Count} units";
}
