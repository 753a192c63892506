using System.Text.Json.Nodes;
using LoraLego.Core.Adapters;
using static TorchSharp.torch;

namespace LoraLego.Core.Units;

/// <summary>
/// Assembles units into an adapter by concatenation: the rows of A and the columns of B of every
/// unit of a module are stacked, so the module's update is the sum of the units' updates
/// (concatenation-summation equivalence, LoRA-LEGO Section 3). Joining the split of one adapter
/// gives its update back; joining the splits of several gives the sum of their (weighted) updates.
/// </summary>
public static class MsuJoiner
{
    /// <param name="units">Units of any adapters and modules; modules appear in order of their first unit.</param>
    /// <param name="name">The joined adapter's name.</param>
    /// <param name="template">Config whose unknown fields (base model, task type) the result keeps; null for <see cref="TemplateOf"/> the units.</param>
    public static LoraAdapter Join(IEnumerable<Msu> units, string name = "joined", AdapterConfig? template = null)
    {
        var pools = MsuPool.FromUnits(units).ToList();
        var modules = pools.Select(JoinModule).ToList();
        return LoraAdapter.Create(name, template ?? TemplateOf(pools.SelectMany(p => p.Units)), modules);
    }

    /// <summary>
    /// The config that what is built from <paramref name="units"/> keeps, as a merge of whole
    /// adapters keeps its first input's: the first unit's adapter's, or a bare LoRA config when
    /// no unit knows its adapter.
    /// </summary>
    public static AdapterConfig TemplateOf(IEnumerable<Msu> units) =>
        units.Select(u => u.AdapterConfig).FirstOrDefault(c => c is not null) ?? AdapterConfig.Bare();

    /// <summary>
    /// One module from the pooled units. Units that share one scaling keep their factors as they
    /// are under that scaling, so joining a split reproduces the adapter's A and B; otherwise each
    /// unit's scaling is folded into its row of A and the module's scaling is 1.
    /// </summary>
    public static LoraModule JoinModule(MsuPool pool)
    {
        double common = pool.Units[0].Scaling;
        bool shared = pool.Units.All(u => u.Scaling == common);
        int rank = pool.Count;
        var a = new float[rank * pool.InFeatures];
        var b = new float[pool.OutFeatures * rank];
        for (int i = 0; i < rank; i++)
        {
            var unit = pool.Units[i];
            float fold = shared ? 1f : (float)unit.Scaling;
            for (int j = 0; j < pool.InFeatures; j++)
                a[i * pool.InFeatures + j] = fold * unit.A[j];
            for (int o = 0; o < pool.OutFeatures; o++)
                b[o * rank + i] = unit.B[o];
        }
        using var scope = NewDisposeScope();
        return LoraModule.FromFactors(pool.ModuleKey,
            tensor(a, [rank, pool.InFeatures]), tensor(b, [pool.OutFeatures, rank]),
            shared ? common : 1.0, pool.FanInFanOut, kernel: pool.Kernel);
    }
}
