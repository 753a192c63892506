using LoraLego.Core.Adapters;

namespace LoraLego.Core.Merging.Tuning;

/// <summary>Builds the adapter a <see cref="MergeCandidate"/> describes (one row of a search history, say), with the same Core merges Merge-Lora runs.</summary>
public static class CandidateMerger
{
    /// <param name="candidate">The method, settings, weights and module scales.</param>
    /// <param name="adapters">The adapters, in the order of the candidate's weights.</param>
    /// <param name="name">The merged adapter's name.</param>
    /// <param name="seed">The DARE methods' seed; the other methods draw nothing.</param>
    /// <param name="cancellationToken">Checked between modules.</param>
    public static LoraAdapter Merge(MergeCandidate candidate, IReadOnlyList<LoraAdapter> adapters, string name, long seed, CancellationToken cancellationToken)
    {
        var inputs = adapters.Select((a, i) => new MergeInput(Prescaled(a, i, candidate), candidate.Weights[i])).ToList();
        if (candidate.Method is not { } method)
            return LegoMerge.Merge(inputs, candidate.Lego, name, cancellationToken: cancellationToken);
        var recipe = method.Recipe();
        return StandardMerge.Merge(inputs, method, new MergeOptions
        {
            Name = name,
            Density = candidate.Density,
            Seed = recipe.Trimming == Trimming.RandomDrop ? seed : null,
            CancellationToken = cancellationToken,
        });
    }

    // A module scale multiplies the module's alpha, so every method sees it exactly as it sees the adapter's own
    // scaling, and the factors are neither copied nor changed. The factor-wise PEFT methods take sqrt(weight * scaling),
    // which a negative scale does not have: there it stops at 0 (the adapter left out of that module).
    private static LoraAdapter Prescaled(LoraAdapter adapter, int index, MergeCandidate candidate)
    {
        if (candidate.ModuleScales is not { } scales)
            return adapter;
        bool factorwise = candidate.Method is { } m && m.Recipe().Form == MergeForm.Factorwise;
        var modules = adapter.Modules.Select(module =>
        {
            double scale = scales.TryGetValue(module.Key, out var perAdapter) ? perAdapter[index] : 1.0;
            if (factorwise)
                scale = Math.Max(0, scale);
            return new LoraModule(module.Key, module.Rank, module.Alpha * scale, module.UseRsLora, module.A, module.B, module.FanInFanOut) { Kernel = module.Kernel };
        }).ToList();
        return new LoraAdapter(adapter.Name, adapter.Path, adapter.Format, adapter.Config, modules);
    }
}
