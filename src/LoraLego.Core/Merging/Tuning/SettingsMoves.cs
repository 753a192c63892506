using LoraLego.Core.Adapters;

namespace LoraLego.Core.Merging.Tuning;

/// <summary>
/// The settings a search tries one at a time, coordinate-wise, from the current candidate: for LoRA-LEGO the merged
/// rank k (twice the largest input rank, and every unit), the target (Mean and Sum, the weights rescaled by N so the
/// update keeps its size) and each reweighting switch; for the trimming PEFT methods the density.
/// </summary>
internal static class SettingsMoves
{
    public static IEnumerable<Func<MergeCandidate, MergeCandidate>> For(MergeCandidate start, IReadOnlyList<LoraAdapter> adapters)
    {
        if (start.Method is null)
        {
            int largest = adapters.Max(a => a.Modules.Count == 0 ? a.Rank : a.Modules.Max(m => m.Rank));
            int all = adapters.Sum(a => a.Modules.Count == 0 ? a.Rank : a.Modules.Max(m => m.Rank));
            foreach (int k in new[] { 2 * largest, all }.Where(k => k > largest).Distinct())
                yield return c => c with { Lego = c.Lego with { Clustering = c.Lego.Clustering with { K = k } } };
            yield return FlipTarget;
            yield return c => c with { Lego = c.Lego with { ParameterReweight = !c.Lego.ParameterReweight } };
            yield return c => c with { Lego = c.Lego with { OutputReweight = !c.Lego.OutputReweight } };
        }
        else if (start.Density is { } density)
        {
            foreach (double d in new[] { 0.3, 0.7 }.Where(d => d != density))
                yield return c => c with { Density = d };
        }
    }

    private static MergeCandidate FlipTarget(MergeCandidate c)
    {
        double n = c.Weights.Count;
        return c.Lego.Target == LegoTarget.Mean
            ? c with { Lego = c.Lego with { Target = LegoTarget.Sum }, Weights = c.Weights.Select(w => w / n).ToArray() }
            : c with { Lego = c.Lego with { Target = LegoTarget.Mean }, Weights = c.Weights.Select(w => w * n).ToArray() };
    }
}
