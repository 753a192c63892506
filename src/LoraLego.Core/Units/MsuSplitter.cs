using LoraLego.Core.Adapters;
using LoraLego.Core.Merging;

namespace LoraLego.Core.Units;

/// <summary>
/// Takes adapters apart into Minimal Semantic Units. Everything here streams: a module's factors
/// are read only when the enumeration reaches it and are not kept, so peak memory is one module.
/// </summary>
public static class MsuSplitter
{
    /// <summary>The units of <paramref name="adapter"/>, module by module.</summary>
    /// <param name="adapter">The adapter to take apart; its factors are read module by module as the result is enumerated.</param>
    /// <param name="weight">Folded into every unit's <see cref="Msu.Scaling"/>: the units sum to weight * the adapter's update.</param>
    /// <param name="moduleFilter">Wildcard over module keys; null keeps every module.</param>
    public static IEnumerable<Msu> Split(LoraAdapter adapter, double weight = 1.0, string? moduleFilter = null)
    {
        var filter = new ModuleFilter(moduleFilter);
        foreach (var module in adapter.Modules)
        {
            if (!filter.Matches(module.Key))
                continue;
            foreach (var unit in SplitModule(adapter, module, weight))
                yield return unit;
        }
    }

    /// <summary>The units of one module of <paramref name="adapter"/>.</summary>
    public static IReadOnlyList<Msu> SplitModule(LoraAdapter adapter, LoraModule module, double weight = 1.0)
    {
        float[] a = module.A.ToArray();
        float[] b = module.B.ToArray();
        int rank = module.Rank;
        int inFeatures = (int)module.InFeatures;
        int outFeatures = (int)module.OutFeatures;
        double scaling = module.Scaling * weight;
        var units = new Msu[rank];
        for (int i = 0; i < rank; i++)
        {
            var row = a.AsSpan(i * inFeatures, inFeatures).ToArray();
            var column = new float[outFeatures];
            for (int o = 0; o < outFeatures; o++)
                column[o] = b[o * rank + i];
            units[i] = new Msu(adapter.Name, module.Key, i, row, column, scaling, rank, module.FanInFanOut) { AdapterConfig = adapter.Config, Kernel = module.Kernel };
        }
        return units;
    }

    /// <summary>
    /// The pools of a merge: for each module any input targets (in order of first appearance), the
    /// units of every input that has it. Inputs with weight 0 contribute nothing and are left out,
    /// so that their zero units cannot pull centroids towards the origin.
    /// </summary>
    public static IEnumerable<MsuPool> Pools(IReadOnlyList<MergeInput> inputs, string? moduleFilter = null)
    {
        var filter = new ModuleFilter(moduleFilter);
        foreach (string key in MergeInput.ModuleKeys(inputs).Where(filter.Matches))
        {
            var units = new List<Msu>();
            foreach (var input in inputs)
                if (input.Weight != 0 && input.Adapter.GetModule(key) is { } module)
                    units.AddRange(SplitModule(input.Adapter, module, input.Weight));
            if (units.Count > 0)
                yield return new MsuPool(key, units);
        }
    }
}
