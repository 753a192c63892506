using System.Text.Json.Nodes;
using LoraLego.Core.Adapters;
using LoraLego.Core.Compute;
using LoraLego.Core.Formats;
using LoraLego.Core.Surgery;
using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// The merges of Hugging Face PEFT's add_weighted_adapter, computed module by module with PEFT's arithmetic, and
/// the merged adapter described so that it loads in PEFT with the intended update.
/// </summary>
public static class StandardMerge
{
    /// <summary>
    /// Merges <paramref name="inputs"/> (weights in input order) with PEFT's <paramref name="method"/>; the result's
    /// updates are PEFT's, at scaling 1 whatever the first adapter's config (PEFT's merge copies use_rslora from the
    /// first input and so scales its result by sqrt(r) when that input is rsLoRA; LoraLego does not).
    /// A module missing from some adapters is merged from those that have it, as in PEFT. Going beyond PEFT:
    /// Ties, DareLinear, DareTies and MagnitudePrune over modules of different ranks run their _svd form instead of
    /// failing, plain Svd never forms the dense out x in matrix, and the trimming _svd forms find their rank-k result
    /// by a randomized range finder rather than a full SVD (<see cref="MergeOptions.DenseSvd"/> takes PEFT's route). A single input is merged linearly, as PEFT does.
    /// </summary>
    /// <exception cref="LoraException">
    /// InvalidArgument for an option the method does not take or lacks (Density), Linear over different ranks, or a
    /// negative weight in a factor-wise method; ShapeMismatch when adapters adapt a module with different shapes.
    /// </exception>
    /// <exception cref="OperationCanceledException">When <see cref="MergeOptions.CancellationToken"/> is cancelled.</exception>
    public static LoraAdapter Merge(IReadOnlyList<MergeInput> inputs, MergeMethod method, MergeOptions? options = null)
    {
        options ??= new MergeOptions();
        var log = options.Verbose;
        Validate(inputs, method, options);
        Provenance.BeginHashing(inputs.Select(i => i.Adapter));
        if (inputs.Count == 1 && method != MergeMethod.Linear)
        {
            log?.Invoke($"one adapter: PEFT merges a single adapter linearly whatever the combination type, so '{method.PeftName()}' runs as 'linear'");
            method = MergeMethod.Linear;
        }
        var recipe = method.Recipe();
        var keys = MergeInput.ModuleKeys(inputs);
        foreach (var key in keys)
        {
            ModuleInputs.CheckShapes(key, inputs);
            if (method == MergeMethod.Linear)
                RequireEqualRanks(key, inputs);
        }

        int rank = options.Rank ?? inputs.Max(i => i.Adapter.Rank);
        long seed = options.Seed ?? Random.Shared.NextInt64();
        if (recipe.Trimming == Trimming.RandomDrop && options.Seed is null)
            log?.Invoke($"DARE seed {seed} (pass it as the seed to reproduce this merge)");
        var device = DeviceSelector.Resolve(options.Device, log);
        var combiner = TaskCombiner.For(recipe, options);
        if (options.Device.Kind == ComputeDeviceKind.Auto && device.type != TorchSharp.DeviceType.CPU && recipe.Form == MergeForm.Factorwise && combiner.IsWeightedSum)
        {
            // A weighted sum of the factors is a few adds per value read: the CPU's span loops finish it before the
            // inputs would have been copied to the GPU and the results back (7B: 1.0 s on an H200, 0.46 s on its CPU).
            log?.Invoke($"{method.PeftName()}: -Device Auto runs it on the CPU, where a weighted sum of the factors is faster than a round trip to {device}; -Device Cuda runs it there");
            device = CPU;
        }
        log?.Invoke(Describe(method, recipe, combiner, options, rank));

        var storeAs = MergeInput.StorageDType(inputs);
        var merged = new List<LoraModule>(keys.Count);
        using var workspace = new CombinationWorkspace();
        // One handle per input file for the whole merge instead of one per tensor read.
        using var open = SafetensorsFile.KeepOpen(inputs.SelectMany(i => i.Adapter.Modules).SelectMany(m => new[] { m.A, m.B })
            .Select(f => f.SourceFile).OfType<SafetensorsFile>());
        var presents = keys.Select(key => ModuleInputs.Present(key, inputs)).ToList();
        // Modules that need no libtorch call between their read and their result are merged side by side (OrderedWork:
        // handed on in order, so progress, verbose lines and errors come as they do one module at a time): a span-loop
        // weighted sum (Linear on the CPU) one per libtorch thread and at least two, so that one module is read while
        // another is summed; a trimming _svd form on the CPU's fused passes as many as its combined updates' budget
        // allows, the threads shared among them (its serial steps, the cut's selection and the small decompositions,
        // then run beside another module's passes instead of leaving cores idle).
        var owned = new List<CombinationWorkspace>();
        Action<string>? Replayed(List<string> lines) => log is null ? null : lines.Add;
        var ahead = recipe.Form == MergeForm.Factorwise && presents.All(present => FactorwiseSum.Covers(present, combiner, device, storeAs))
            ? OrderedWork.Map(Enumerable.Range(0, keys.Count), Math.Max(2, get_num_threads()), () => 0,
                (i, _) => (Module: FactorwiseSum.Merge(keys[i], presents[i], storeAs), Lines: new List<string>())).GetEnumerator()
            : CombinesSideBySide(recipe, combiner, options, device, inputs, keys, rank) && SideBySideWorkers(inputs, keys) is { Degree: > 1 } workers
                ? OrderedWork.Map(Enumerable.Range(0, keys.Count), workers.Degree, () =>
                {
                    var own = new CombinationWorkspace();
                    lock (owned)
                        owned.Add(own);
                    return own;
                }, (i, own) =>
                {
                    options.CancellationToken.ThrowIfCancellationRequested();
                    var lines = new List<string>();
                    return (Module: MergeAt(i, own, workers.ThreadsEach, Replayed(lines)), Lines: lines);
                }).GetEnumerator()
                : null;
        try
        {
            for (int i = 0; i < keys.Count; i++)
            {
                options.CancellationToken.ThrowIfCancellationRequested();
                string key = keys[i];
                options.Progress?.Invoke(new MergeProgress(i, keys.Count, key));
                var present = presents[i];
                if (present.Count < inputs.Count)
                    log?.Invoke($"{key}: only in {string.Join(", ", present.Select(p => p.Input.Adapter.Name))}; merged from those");
                if (recipe.Form == MergeForm.Concatenate)
                {
                    // The concatenation is computed at export; the inputs' weights are read (and checked
                    // for NaN and Inf, by name) now, so a bad input fails the merge and not a later export.
                    foreach (var input in inputs)
                        if (input.Adapter.GetModule(key) is { } m)
                        {
                            m.A.Load().Dispose();
                            m.B.Load().Dispose();
                        }
                    merged.Add(CatMerge.Deferred(key, inputs, storeAs));
                    continue;
                }
                if (ahead is not null)
                {
                    ahead.MoveNext();
                    foreach (var line in ahead.Current.Lines)
                        log?.Invoke(line);
                    merged.Add(ahead.Current.Module);
                    continue;
                }
                if (recipe.Form == MergeForm.Factorwise && FactorwiseSum.Covers(present, combiner, device, storeAs))
                {
                    merged.Add(FactorwiseSum.Merge(key, present, storeAs));
                    continue;
                }
                merged.Add(MergeAt(i, workspace, get_num_threads(), log));
            }
        }
        finally
        {
            ahead?.Dispose();
            foreach (var own in owned)
                own.Dispose();
        }

        LoraModule MergeAt(int i, CombinationWorkspace into, int threads, Action<string>? moduleLog)
        {
            using var scope = NewDisposeScope();
            using var module = ModuleInputs.Load(keys[i], inputs, options.Density ?? 1, device);
            var random = recipe.Trimming == Trimming.RandomDrop ? RandomDrop.ForModule(seed, keys[i]) : null;
            var factors = MergeModule(module, method, recipe, combiner, random, rank, options.Clamp, options.DenseSvd, into, threads, moduleLog);
            return LoraModule.FromFactors(keys[i], factors.A, factors.B, 1.0, module.FanInFanOut, storeAs, module.Kernel);
        }
        return LoraAdapter.Create(options.Name, inputs[0].Adapter.Config, merged, Record(inputs, method, options, rank, seed, recipe));
    }

    // The merged adapter's provenance (Provenance.MetadataKey in the export's header): what PEFT would be called with.
    private static JsonObject Record(IReadOnlyList<MergeInput> inputs, MergeMethod method, MergeOptions options, int rank, long seed, MergeRecipe recipe)
    {
        var record = new JsonObject
        {
            ["method"] = method.PeftName(),
            ["inputs"] = new JsonArray(inputs.Select(i =>
            {
                var input = Provenance.Input(i.Adapter, i.Weight);
                if (i.Density is { } density)
                    input["density"] = density;
                return (JsonNode)input;
            }).ToArray()),
        };
        if (recipe.Form != MergeForm.Concatenate && method != MergeMethod.Linear)
            record["rank"] = rank;
        if (options.Density is { } d)
            record["density"] = d;
        if (recipe.ElectsSign)
            record["majority_sign_method"] = (options.MajoritySign ?? MajoritySign.Total).ToString().ToLowerInvariant();
        if (options.Clamp is { } c)
            record["clamp"] = c;
        if (recipe.Trimming == Trimming.RandomDrop)
            record["seed"] = seed;
        return record;
    }

    private static MergedFactors MergeModule(ModuleInputs module, MergeMethod method, MergeRecipe recipe, TaskCombiner combiner,
        Mt19937? random, int rank, double? clamp, bool denseSvd, CombinationWorkspace workspace, int threads, Action<string>? log)
    {
        switch (recipe.Form)
        {
            case MergeForm.Concatenate:
                throw new System.Diagnostics.UnreachableException("Cat modules are built deferred, without loading their inputs");
            case MergeForm.Factorwise when module.EqualRanks:
                return FactorwiseMerge.Merge(module, combiner, random);
            case MergeForm.Factorwise:
                // A's of different ranks cannot be trimmed and combined entry by entry, but the dense updates can.
                log?.Invoke($"{module.Key}: ranks differ ({string.Join(", ", module.Members.Select(m => $"{m.AdapterName} r{m.Rank}"))}); " +
                    $"'{method.PeftName()}' ran on the dense updates as '{method.DenseCounterpart().PeftName()}', cut back to rank {rank}");
                return OnDenseUpdates(module, combiner, random, rank, clamp, denseSvd, workspace, threads);
            case MergeForm.DenseSvd when combiner.IsWeightedSum && !denseSvd:
                return SvdMerge.Factored(module, rank, clamp);
            default:
                return OnDenseUpdates(module, combiner, random, rank, clamp, denseSvd, workspace, threads);
        }
    }

    // The one choice between PEFT's full SVD and the randomized range finder, for every merge that combines dense updates.
    private static MergedFactors OnDenseUpdates(ModuleInputs module, TaskCombiner combiner, Mt19937? random, int rank, double? clamp, bool denseSvd,
        CombinationWorkspace workspace, int threads) =>
        denseSvd ? SvdMerge.Dense(module, combiner, random, rank, clamp) : SvdMerge.Randomized(module, combiner, random, rank, clamp, workspace, threads);

    // A trimming _svd form whose every module the CPU's fused passes combine and the range finder's row-block passes cut:
    // their bytes do not depend on the threads, where libtorch's products (small modules) would take the thread count of
    // whichever pool thread runs them.
    private static bool CombinesSideBySide(MergeRecipe recipe, TaskCombiner combiner, MergeOptions options, Device device,
        IReadOnlyList<MergeInput> inputs, IReadOnlyList<string> keys, int rank) =>
        recipe.Form == MergeForm.DenseSvd && !combiner.IsWeightedSum && !options.DenseSvd && device.type == TorchSharp.DeviceType.CPU
        && UpdateTiles.IsAccelerated
        && Modules(inputs, keys).All(m => m.OutFeatures * m.InFeatures <= int.MaxValue / sizeof(float)
            && RandomizedSvd.TakesRowBlocks(m.OutFeatures, m.InFeatures, rank, SvdMerge.Oversampling));

    // The combined updates of the modules merged at once stay within this (a 7B MLP module's are 180 MB, a 70B's 940 MB).
    private const long CombinedBudgetBytes = 768L << 20;

    // As many modules at once as the budget and the libtorch threads allow, the threads shared among them.
    private static (int Degree, int ThreadsEach) SideBySideWorkers(IReadOnlyList<MergeInput> inputs, IReadOnlyList<string> keys) =>
        OrderedWork.Workers(CombinedBudgetBytes, Modules(inputs, keys).Select(m => m.OutFeatures * m.InFeatures * sizeof(float)).DefaultIfEmpty(0).Max(),
            Math.Max(1, get_num_threads()), minimum: 1);

    private static IEnumerable<LoraModule> Modules(IReadOnlyList<MergeInput> inputs, IReadOnlyList<string> keys) =>
        keys.SelectMany(key => inputs.Select(i => i.Adapter.GetModule(key)).OfType<LoraModule>());

    private static string Describe(MergeMethod method, MergeRecipe recipe, TaskCombiner combiner, MergeOptions options, int rank) => recipe.Form switch
    {
        MergeForm.Concatenate => "cat: A's and B's stacked along the rank",
        MergeForm.Factorwise => $"{method.PeftName()}: on the A's and the B's separately (PEFT's form; cross terms between adapters are part of the result)",
        _ when combiner.IsWeightedSum && !options.DenseSvd => $"{method.PeftName()}: truncated SVD to rank {rank} from the stacked factors (no dense matrix)",
        _ when !options.DenseSvd => $"{method.PeftName()}: on the dense updates, combined block by block, rank {rank} by a randomized range finder " +
            $"(oversampling {SvdMerge.Oversampling}, started from the untrimmed sum's leading directions, {SvdMerge.StartedPowerIterations} power iteration; " +
            $"where the adapters cancel in that sum, a Gaussian sketch and {SvdMerge.PowerIterations}; -DenseSvd takes PEFT's full SVD)",
        _ => $"{method.PeftName()}: on the dense updates, truncated SVD to rank {rank}",
    };

    /// <summary>Refuses options <paramref name="method"/> does not take, before anything is read (recipes check every document with it before running one).</summary>
    internal static void Validate(IReadOnlyList<MergeInput> inputs, MergeMethod method, MergeOptions options)
    {
        if (inputs.Count == 0)
            throw Invalid("a merge needs at least one adapter");
        foreach (var input in inputs.Where(i => !double.IsFinite(i.Weight)))
            throw Invalid($"the weight of '{input.Adapter.Name}' is {input.Weight}; weights must be finite numbers");
        var recipe = method.Recipe();
        string name = method.PeftName();
        if (recipe.Form == MergeForm.Factorwise && inputs.FirstOrDefault(i => i.Weight < 0) is { } negative)
            throw Invalid($"'{name}' scales each adapter's A and B by sqrt(weight * scaling), which a negative weight ('{negative.Adapter.Name}': {negative.Weight}) does not have; use cat or an svd method to subtract an adapter");
        if (recipe.NeedsDensity && options.Density is null && inputs.FirstOrDefault(i => i.Density is null) is { } without)
            throw Invalid($"'{name}' needs a density (the fraction of entries kept){(inputs.Any(i => i.Density is not null) ? $", which '{without.Adapter.Name}' lacks" : "")}");
        if (!recipe.NeedsDensity && (options.Density is not null || inputs.Any(i => i.Density is not null)))
            throw Invalid($"'{name}' does not trim entries; density applies to ties, dare and magnitude_prune methods");
        foreach (var d in inputs.Select(i => i.Density).Append(options.Density).OfType<double>().Where(d => !(d > 0 && d <= 1)))
            throw Invalid($"density {d} is outside (0, 1]");
        if (options.MajoritySign is not null && !recipe.ElectsSign)
            throw Invalid($"'{name}' elects no signs; the majority sign method applies to ties and dare_ties methods");
        if (options.Seed is not null && recipe.Trimming != Trimming.RandomDrop)
            throw Invalid($"'{name}' draws nothing at random; a seed applies to dare methods");
        bool truncates = recipe.Form != MergeForm.Concatenate && method != MergeMethod.Linear;
        if (!truncates && options.Rank is not null)
            throw Invalid($"'{name}' does not truncate; a rank applies to svd methods (and to the dense form of ties, dare and magnitude_prune over mixed ranks)");
        if (!truncates && options.Clamp is not null)
            throw Invalid($"'{name}' does not truncate; a clamp applies to svd methods");
        if (options.Rank is { } r && r < 1)
            throw Invalid($"rank {r} must be at least 1");
        if (options.Clamp is { } c && !(c > 0 && c <= 1))
            throw Invalid($"clamp {c} is a quantile and must lie in (0, 1]");
    }

    private static void RequireEqualRanks(string key, IReadOnlyList<MergeInput> inputs)
    {
        var ranks = inputs.Select(i => (i.Adapter.Name, Module: i.Adapter.GetModule(key))).Where(p => p.Module is not null).ToList();
        if (ranks.Any(p => p.Module!.Rank != ranks[0].Module!.Rank))
            throw new LoraException(LoraErrorKind.InvalidArgument, key,
                $"'linear' sums the A's and the B's, which needs equal ranks, but the ranks are {string.Join(", ", ranks.Select(p => $"{p.Name} r{p.Module!.Rank}"))}; use cat (exact) or svd (truncated)");
    }

    private static LoraException Invalid(string message) => new(LoraErrorKind.InvalidArgument, null, message);
}
