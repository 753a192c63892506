using LoraLego.Core.Adapters;

namespace LoraLego.Core.Merging.Tuning;

/// <summary>
/// The settings a search tries one at a time, coordinate-wise, from the current candidate: for LoRA-LEGO the merged
/// rank k (the largest input rank, twice it, and every unit, whichever the candidate does not have) and each
/// reweighting switch; for the trimming PEFT methods the density. The target is not a move: Sum with the weights
/// over N is the same merge as Mean, and the weight search already scales.
/// </summary>
internal static class SettingsMoves
{
    public static IEnumerable<Func<MergeCandidate, MergeCandidate>> For(MergeCandidate start, IReadOnlyList<LoraAdapter> adapters)
    {
        if (start.Method is null)
        {
            int largest = adapters.Max(a => a.Modules.Count == 0 ? a.Rank : a.Modules.Max(m => m.Rank));
            int all = adapters.Sum(a => a.Modules.Count == 0 ? a.Rank : a.Modules.Max(m => m.Rank));
            var ks = new int?[] { largest, 2 * largest, null }.Where(k => k is null || k < all).Where(k => k != start.Lego.Clustering.K).Distinct();
            foreach (var k in ks)
                yield return c => c with { Lego = c.Lego with { Clustering = c.Lego.Clustering with { K = k } } };
            yield return c => c with { Lego = c.Lego with { ParameterReweight = !c.Lego.ParameterReweight } };
            yield return c => c with { Lego = c.Lego with { OutputReweight = !c.Lego.OutputReweight } };
        }
        else if (start.Density is { } density)
        {
            foreach (double d in new[] { 0.3, 0.7 }.Where(d => d != density))
                yield return c => c with { Density = d };
        }
    }
}
