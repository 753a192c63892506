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
    public static IReadOnlyList<Msu> SplitModule(LoraAdapter adapter, LoraModule module, double weight = 1.0) =>
        new ModuleUnits(adapter, module, weight).Read().Units;

    /// <summary>
    /// The pools of a merge: for each module any input targets (in order of first appearance), the
    /// units of every input that has it. Inputs with weight 0 contribute nothing and are left out,
    /// so that their zero units cannot pull centroids towards the origin.
    /// </summary>
    public static IEnumerable<MsuPool> Pools(IReadOnlyList<MergeInput> inputs, string? moduleFilter = null) => Pools(inputs, moduleFilter, read: true);

    /// <summary>As <see cref="Pools(IReadOnlyList{MergeInput}, string?)"/>; with <paramref name="read"/> false the
    /// factors are read only when the pool is clustered (or a unit looked at), as a merge needs them.</summary>
    internal static IEnumerable<MsuPool> Pools(IReadOnlyList<MergeInput> inputs, string? moduleFilter, bool read)
    {
        var filter = new ModuleFilter(moduleFilter);
        foreach (string key in MergeInput.ModuleKeys(inputs).Where(filter.Matches))
        {
            var modules = new List<ModuleUnits>();
            foreach (var input in inputs)
                if (input.Weight != 0 && input.Adapter.GetModule(key) is { } module)
                    modules.Add(read ? new ModuleUnits(input.Adapter, module, input.Weight).Read() : new ModuleUnits(input.Adapter, module, input.Weight));
            if (modules.Count > 0)
                yield return new MsuPool(key, modules);
        }
    }
}
