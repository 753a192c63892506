using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text.Json.Nodes;
using LoraLego.Core.Adapters;
using LoraLego.Core.Clustering;
using LoraLego.Core.Compute;
using LoraLego.Core.Formats;
using LoraLego.Core.Units;
using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// The LoRA-LEGO merge (Zhao et al., "Merging LoRAs like Playing LEGO", ICLR 2025, arXiv
/// 2409.16167): every module's units from every input are pooled, clustered into k groups, and each
/// centroid becomes one rank of the merged module, followed by dual reweighting.
/// </summary>
/// <remarks>
/// <para>Semantics, per module. Input i has weight w_i (default 1, as for Cat: the weight
/// multiplies the input's update, negative weights subtract) and update dW_i = s_i B_i A_i. Its
/// units are folded to b = sign(w_i s_i) sqrt(|w_i s_i|) B[:,u], a = sqrt(|w_i s_i|) A[u,:], so
/// that sum over all units of b a^T = sum_i w_i dW_i exactly (concatenation-summation, Section 3).
/// Each unit is sign-canonicalised (<see cref="SignCanonicalizer"/>).</para>
/// <para>Cluster j with members M_j (m_j = |M_j|) has centroid c_j = mean of the members' [b; a].</para>
/// <para>Parameter reweighting (norm decay): averaging vectors that point in different directions
/// shrinks them, so c_j is multiplied by rho_j = mean_{u in M_j} ||[b_u; a_u]|| / ||c_j||, with
/// the L-infinity norm by default or L2 (<see cref="RankClusterOptions.Norm"/>). Both parts are
/// scaled, so the cluster's rank-one term scales by rho_j^2.</para>
/// <para>Target: every cluster's term is multiplied by its size m_j (sqrt(m_j) on each part), so a
/// cluster of near-identical units stands for all of them and singleton clusters reproduce the
/// units exactly. <see cref="LegoTarget.Sum"/> stops there: the merge approximates sum_i w_i dW_i.
/// <see cref="LegoTarget.Mean"/> (default) also divides by N, the number of adapters merged: it
/// approximates (1 / N) sum_i w_i dW_i, PEFT's cat with weights w_i / N. Where each cluster holds
/// one unit of every input (the case the paper describes) this is the centroid once, the paper's
/// mean; unlike the centroid once, it stays the mean when clusters are uneven or singletons.</para>
/// <para>Output reweighting (variance expansion): a LoRA's output variance grows with the number of
/// rank-one terms, so the merged update is multiplied by sqrt(r / k), with k the merged rank and r
/// the mean rank of the inputs that target the module (each input counted once). The factor is the
/// merged module's scaling: alpha = k * sqrt(r / k), so it stays visible in the config.</para>
/// <para>Hence: k = number of units (the default) with both reweightings off reproduces Cat exactly
/// (every cluster is one unit, m_j = 1): with Sum, Cat with the weights w_i; with Mean, Cat with
/// w_i / N. An adapter merged with itself N times at k = its rank gives it back with Mean (rho = 1,
/// r = k) and N times it with Sum.</para>
/// <para>The defaults (k = every unit, so nothing is lost; Mean; output reweighting off; parameter
/// reweighting on, which changes nothing until clusters have several members) come from measuring
/// five skill sets (docs/merge-quality.md): without data, every compression to fewer ranks lost to
/// this lossless mean on at least one set, and the paper's settings at k = the input rank lost on
/// all five.</para>
/// <para>Source of the formulas: the paper's abstract and the reviews of it name the two reweightings
/// and their causes (norm decay, variance expansion). The section numbers cited in this folder (3: MSU
/// properties, 4: clustering and reweighting) follow the paper's outline as reviews give it; its method
/// text could not be read here, so the exact formulas follow the public reviews ("rescale
/// the centroid with respect to the average cluster norm") and the public reimplementation described
/// in docs ALGORITHMS.md (L-infinity ratio, normalised clustering space, sqrt(r / k)). Both
/// reweightings are switches and the norm and space are options, so their effect can be measured.</para>
/// </remarks>
public static class LegoMerge
{
    /// <summary>Merges adapters, streaming module by module: the units of a few modules in memory at a time, one per
    /// libtorch thread, clustered side by side and handed on in order.</summary>
    /// <param name="inputs">Adapters with weights; ranks, rsLoRA, rank/alpha patterns and target modules may differ
    /// (a module some inputs lack is merged from those that have it).</param>
    /// <param name="options">Clustering, reweighting and target choices; null for the defaults.</param>
    /// <param name="name">The merged adapter's name.</param>
    /// <param name="verbose">Per-module k, inertia and reweighting factors.</param>
    /// <param name="progress">Called as each module is handed on, in order, on the calling thread.</param>
    /// <param name="cancellationToken">Checked between modules.</param>
    public static LoraAdapter Merge(IReadOnlyList<MergeInput> inputs, LegoOptions? options = null, string name = "lego",
        Action<string>? verbose = null, Action<MergeProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new LegoOptions();
        options.Clustering.Validate();
        if (inputs.Count == 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, "a LoRA-LEGO merge needs at least one adapter");
        foreach (var input in inputs.Where(i => !double.IsFinite(i.Weight)))
            throw new LoraException(LoraErrorKind.InvalidArgument, input.Adapter.Name, $"weight {input.Weight} is not a finite number");
        Provenance.BeginHashing(inputs.Select(i => i.Adapter));
        var device = DeviceSelector.Resolve(options.Clustering.Device, verbose);
        var filter = new ModuleFilter(options.ModuleFilter);
        var keys = MergeInput.ModuleKeys(inputs).Where(filter.Matches).ToList();
        var (degree, gramThreads) = Workers(inputs, keys);
        // One handle per input file for the whole merge instead of one per module read.
        using var open = SafetensorsFile.KeepOpen(inputs.SelectMany(i => i.Adapter.Modules).SelectMany(m => new[] { m.A, m.B })
            .Select(f => f.SourceFile).OfType<SafetensorsFile>());
        var modules = OrderedWork.Map(MsuSplitter.Pools(inputs, options.ModuleFilter, read: false), degree, () => new ClusterWorkspace(gramThreads),
            (pool, workspace) =>
            {
                cancellationToken.ThrowIfCancellationRequested();
                return Built(RankClusterer.Cluster(pool, options.Clustering, device, null, workspace), options, verbose is not null, inputs.Count);
            });
        // The record names the inputs' digests, which are hashed while the modules are clustered.
        JsonObject Recorded() => Record(options, new JsonArray(inputs.Select(i => (JsonNode)Provenance.Input(i.Adapter, i.Weight)).ToArray()));
        return Assemble(modules, inputs[0].Adapter.Config, Recorded, name, keys.Count, verbose, progress, cancellationToken);
    }

    // The rows of the modules clustered at once stay within this (a 7B module's 128 units are 8 MB of rows, a 70B's 19 MB).
    private const long RowsBudgetBytes = 256L << 20;

    // One module per libtorch thread, each module's Gram products on one thread (the modules' serial steps then run side
    // by side: one module at a time left all but one core idle outside its Gram products), and at least two, so that one
    // module is read while another is clustered; fewer where the widest module's rows would exceed the budget, their
    // Gram products then shared among the threads left.
    private static (int Degree, int GramThreads) Workers(IReadOnlyList<MergeInput> inputs, IEnumerable<string> keys)
    {
        int threads = Math.Max(1, get_num_threads());
        long widest = keys.Select(key => inputs.Select(i => i.Adapter.GetModule(key)).OfType<LoraModule>().ToList())
            .Select(modules => (long)ClusterWorkspace.RowsLength(modules.Sum(m => m.Rank), (int)modules[0].OutFeatures, (int)modules[0].InFeatures) * sizeof(float))
            .DefaultIfEmpty(0).Max();
        return OrderedWork.Workers(RowsBudgetBytes, widest, threads, minimum: 2);
    }

    /// <summary>
    /// Merges modules already clustered (Invoke-RankCluster's output), one module per result. The
    /// results are held until the merge ends; a caller that must stream calls <see cref="BuildModule"/> per result.
    /// </summary>
    /// <param name="clusters">One result per module.</param>
    /// <param name="template">Config whose unknown fields the merged adapter keeps; null for that of the first unit's adapter (<see cref="MsuJoiner.TemplateOf"/>).</param>
    /// <param name="options">Only the reweighting switches and the target are read; the clustering choices come from the results.</param>
    /// <param name="name">The merged adapter's name.</param>
    /// <param name="verbose">Per-module k, inertia and reweighting factors.</param>
    /// <param name="progress">Called before each module, as for the standard merges.</param>
    /// <param name="cancellationToken">Checked between modules.</param>
    public static LoraAdapter Merge(IEnumerable<RankCluster> clusters, AdapterConfig? template, LegoOptions? options = null, string name = "lego",
        Action<string>? verbose = null, Action<MergeProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new LegoOptions();
        var list = clusters as IReadOnlyList<RankCluster> ?? clusters.ToList();
        if (list.Count == 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, "no clustered modules to merge");
        // Each result carries its own clustering choices; the record shows the first module's.
        var used = options with { Clustering = list[0].Options };
        var adapters = list.SelectMany(c => c.Adapters).Distinct().ToList();
        var inputs = new JsonArray(adapters.Select(a => (JsonNode)new JsonObject { ["adapter"] = a }).ToArray());
        return Assemble(list.Select(c => Built(c, used, verbose is not null, adapters.Count)), template ?? MsuJoiner.TemplateOf(list.SelectMany(c => c.Units)),
            () => Record(used, inputs), name, list.Count, verbose, progress, cancellationToken);
    }

    /// <summary>
    /// One merged module from one clustered module: rank K, A rows and B columns from the
    /// reweighted centroids, scaling sqrt(r / k) with output reweighting and 1 without.
    /// </summary>
    /// <param name="cluster">The module's clustered units.</param>
    /// <param name="options">Reweighting and target; the clustering choices come from the cluster.</param>
    /// <param name="verbose">Told the module's k, inertia and reweighting factors.</param>
    /// <param name="adapterCount">N, which <see cref="LegoTarget.Mean"/> divides by: the adapters of the whole merge; null for those of this module.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static LoraModule BuildModule(RankCluster cluster, LegoOptions? options = null, Action<string>? verbose = null, int? adapterCount = null)
    {
        options ??= new LegoOptions();
        int k = cluster.K;
        double share = options.Target == LegoTarget.Mean ? 1.0 / (adapterCount ?? cluster.Adapters.Count) : 1.0;
        var factors = new double[k];
        for (int j = 0; j < k; j++)
        {
            double rho = options.ParameterReweight ? NormRatio(cluster, j) : 1.0;
            factors[j] = rho * Math.Sqrt(cluster.ClusterSizes[j] * share);
        }
        double scaling = options.OutputReweight ? Math.Sqrt(cluster.MeanInputRank / k) : 1.0;
        using var scope = NewDisposeScope();
        // The factors are written straight into the tensors' memory, not through arrays copied in.
        var aFactor = empty([k, cluster.InFeatures], ScalarType.Float32);
        var bFactor = empty([cluster.OutFeatures, k], ScalarType.Float32);
        var a = MemoryMarshal.Cast<byte, float>(aFactor.bytes);
        var b = MemoryMarshal.Cast<byte, float>(bFactor.bytes);
        int inFeatures = cluster.InFeatures, outFeatures = cluster.OutFeatures;
        // B is formed transposed (row j: B's column j), then transposed into place.
        var columns = ArrayPool<float>.Shared.Rent(k * outFeatures);
        try
        {
            for (int j = 0; j < k; j++)
            {
                Scaled(cluster.CentroidA[j], factors[j], a.Slice(j * inFeatures, inFeatures));
                Scaled(cluster.CentroidB[j], factors[j], columns.AsSpan(j * outFeatures, outFeatures));
            }
            FloatTranspose.Transpose(columns, k, outFeatures, b, k);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(columns);
        }
        verbose?.Invoke($"{cluster.ModuleKey}: {cluster.Units.Count} units from {string.Join(", ", cluster.Adapters)} -> k {k}" +
            $" (asked {cluster.RequestedK}), inertia {cluster.Inertia:G6} after {cluster.Iterations} iterations;" +
            (options.ParameterReweight ? $" parameter reweighting x{factors.Min():G4}..x{factors.Max():G4};" : " no parameter reweighting;") +
            (options.OutputReweight ? $" output reweighting sqrt({cluster.MeanInputRank:G4}/{k}) = {scaling:G4}" : " no output reweighting") +
            (cluster.Message is null ? "" : $"; {cluster.Message}"));
        // The module keeps the two tensors written here rather than copies of them.
        return LoraModule.Adopt(cluster.ModuleKey, aFactor, bFactor, scaling, cluster.FanInFanOut, cluster.Kernel);
    }

    // (float)(factor * value) for each value: the product in float64, rounded once to float32.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scaled(ReadOnlySpan<float> values, double factor, Span<float> destination)
    {
        var f = Vector256.Create(factor);
        int i = 0;
        for (; i + 8 <= values.Length; i += 8)
        {
            var (low, high) = Vector256.Widen(Vector256.Create(values.Slice(i, 8)));
            Vector256.Narrow(low * f, high * f).CopyTo(destination.Slice(i, 8));
        }
        for (; i < values.Length; i++)
            destination[i] = (float)(factor * values[i]);
    }

    // rho_j: the members' mean norm over the centroid's norm; a centroid of zero norm stays zero.
    private static double NormRatio(RankCluster cluster, int j)
    {
        double norm = CentroidNorm(cluster.CentroidB[j], cluster.CentroidA[j], cluster.Norm);
        return norm > 0 ? cluster.MeanMemberNorms[j] / norm : 1.0;
    }

    // The norm of [b; a] (RankClusterer.NormOf of the widened vector): L2 summed in float64 in order, L-infinity as
    // the largest magnitude, eight values at a time.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double CentroidNorm(float[] b, float[] a, UnitNorm norm)
    {
        if (norm == UnitNorm.L2)
        {
            double sum = 0;
            foreach (double x in b)
                sum += x * x;
            foreach (double x in a)
                sum += x * x;
            return Math.Sqrt(sum);
        }
        return Math.Max(LargestMagnitude(b), LargestMagnitude(a));
    }

    private static float LargestMagnitude(ReadOnlySpan<float> values)
    {
        var largest = Vector256<float>.Zero;
        int i = 0;
        for (; i + 8 <= values.Length; i += 8)
            largest = SimdExtremes.Larger(largest, Vector256.Abs(Vector256.Create(values.Slice(i, 8))));
        float result = 0;
        for (int l = 0; l < 8; l++)
            result = Math.Max(result, largest[l]);
        for (; i < values.Length; i++)
            result = Math.Max(result, Math.Abs(values[i]));
        return result;
    }

    // A module built and, where one is wanted, its verbose line, for the thread that enumerates them to tell.
    private sealed record BuiltModule(LoraModule Module, string? Message);

    private static BuiltModule Built(RankCluster cluster, LegoOptions options, bool verbose, int adapterCount)
    {
        string? message = null;
        var module = BuildModule(cluster, options, verbose ? line => message = line : null, adapterCount);
        return new BuiltModule(module, message);
    }

    private static LoraAdapter Assemble(IEnumerable<BuiltModule> built, AdapterConfig template, Func<JsonObject> record, string name, int count,
        Action<string>? verbose, Action<MergeProgress>? progress, CancellationToken cancellationToken)
    {
        var modules = new List<LoraModule>();
        cancellationToken.ThrowIfCancellationRequested();
        foreach (var (module, message) in built)
        {
            progress?.Invoke(new MergeProgress(modules.Count, count, module.Key));
            if (message is not null)
                verbose?.Invoke(message);
            modules.Add(module);
            cancellationToken.ThrowIfCancellationRequested();
        }
        return LoraAdapter.Create(name, template, modules, record());
    }

    // The merged adapter's provenance (Provenance.MetadataKey in the export's header).
    private static JsonObject Record(LegoOptions options, JsonArray inputs) => new()
    {
        ["method"] = "lego",
        ["reference"] = "arXiv:2409.16167",
        ["target"] = options.Target == LegoTarget.Mean ? "mean" : "sum",
        ["k"] = options.Clustering.K is { } k ? JsonValue.Create(k) : "every unit",
        ["parameter_reweight"] = options.ParameterReweight,
        ["output_reweight"] = options.OutputReweight,
        ["output_reweight_factor"] = "sqrt(mean input rank / k)",
        ["norm"] = options.Clustering.Norm == UnitNorm.LInfinity ? "linf" : "l2",
        ["clustering_space"] = options.Clustering.Space == ClusteringSpace.Normalized ? "normalized" : "raw",
        ["sign_canonicalization"] = SignCanonicalizer.Rule,
        ["seed"] = options.Clustering.KMeans.Seed,
        ["restarts"] = options.Clustering.KMeans.Restarts,
        ["max_iterations"] = options.Clustering.KMeans.MaxIterations,
        ["tolerance"] = options.Clustering.KMeans.Tolerance,
        ["module_filter"] = options.ModuleFilter,
        ["inputs"] = inputs,
    };
}
