using System.Text.Json.Nodes;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Core.Surgery;

/// <summary>
/// Changes an adapter's rank module by module: the best rank-k approximation of each update (Eckart-Young), from
/// the factored SVD of its own factors, so the out x in update is never formed. The result's modules have
/// scaling 1 (B = U S, A = Vh) and keep the input's element type.
/// </summary>
public static class LoraResizer
{
    /// <param name="report">Told each module's ranks and kept energy as it is done.</param>
    /// <param name="cancellationToken">Checked between modules.</param>
    public static LoraAdapter Resize(LoraAdapter adapter, RankRule rule, string? name = null, Action<ModuleRankChange>? report = null,
        Action<SurgeryProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        ArgumentNullException.ThrowIfNull(rule);
        var modules = new List<LoraModule>(adapter.Modules.Count);
        var changes = new List<ModuleRankChange>(adapter.Modules.Count);
        for (int i = 0; i < adapter.Modules.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var module = adapter.Modules[i];
            progress?.Invoke(new SurgeryProgress(i, adapter.Modules.Count, module.Key));
            var (resized, change) = ResizeModule(module, rule);
            modules.Add(resized);
            changes.Add(change);
            report?.Invoke(change);
        }
        var record = SurgeryRecord.Of("resize", rule, changes, ("source", adapter.Path ?? adapter.Name), (Provenance.FormatField, LoraFormats.DefaultFor(adapter).ToString()));
        return LoraAdapter.Create(name ?? adapter.Name, adapter.Config, modules, record);
    }

    private static (LoraModule, ModuleRankChange) ResizeModule(LoraModule module, RankRule rule)
    {
        using var scope = NewDisposeScope();
        using var scaling = module.Scaling.ToScalar();
        var svd = FactoredSvd.Decompose(module.B.LoadFloat32().mul_(scaling), module.A.LoadFloat32());
        var values = svd.ToArray();
        double total = values.Sum(v => v * v);
        int k = rule.Choose(values, total, module.Rank);
        var (a, b) = svd.Truncate(k, ScalarType.Float32);
        var resized = LoraModule.FromFactors(module.Key, a, b, 1.0, module.FanInFanOut, module.A.DType, module.Kernel);
        return (resized, new ModuleRankChange(module.Key, module.Rank, k, RankRule.EnergyKept(values, total, k)));
    }
}
