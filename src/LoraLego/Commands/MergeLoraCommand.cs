using System.Management.Automation;
using LoraLego.Completion;
using LoraLego.Core;
using LoraLego.Core.Adapters;
using LoraLego.Core.Clustering;
using LoraLego.Core.Compute;
using LoraLego.Core.Merging;

namespace LoraLego.Commands;

[Cmdlet(VerbsData.Merge, "Lora", DefaultParameterSetName = AdapterSet)]
[OutputType(typeof(LoraAdapter))]
public sealed class MergeLoraCommand : LoraCmdlet
{
    private const string AdapterSet = "Adapter";
    private const string ClusterSet = "Cluster";
    private const string OtherInputSet = "OtherInput";
    private const string Takes = "LoraAdapter objects (from Import-Lora, or another merge) or RankCluster objects (from Invoke-RankCluster)";

    // Parameters that only the LoRA-LEGO method reads; naming one with another method is an error.
    private static readonly string[] LegoOnly = [nameof(Restarts), nameof(MaxIterations), nameof(Tolerance), nameof(ParameterReweight),
        nameof(OutputReweight), nameof(Target), nameof(Norm), nameof(Space), nameof(Module)];

    private readonly List<LoraAdapter> _adapters = [];
    private readonly List<RankCluster> _clusters = [];

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ParameterSetName = AdapterSet)]
    [ValidateNotNullOrEmpty]
    public LoraAdapter[] Adapter { get; set; } = [];

    /// <summary>Modules clustered by Invoke-RankCluster, merged by LoRA-LEGO.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = ClusterSet)]
    [ValidateNotNullOrEmpty]
    public RankCluster[] Cluster { get; set; } = [];

    /// <summary>Pipeline input of any other type, refused with an error that says what Merge-Lora takes.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = OtherInputSet, DontShow = true)]
    [AllowNull]
    [AllowEmptyString]
    public string? InputObject { get; set; }

    [Parameter]
    public LoraMergeMethod Method { get; set; } = LoraMergeMethod.Lego;

    [Parameter(ParameterSetName = AdapterSet)]
    [ValidateNotNullOrEmpty]
    public double[]? Weight { get; set; }

    /// <summary>The merged rank: k for Lego, svd_rank for the SVD methods.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    [Alias("K")]
    public int? Rank { get; set; }

    [Parameter(ParameterSetName = AdapterSet)]
    [ValidateRange(0.0, 1.0)]
    public double? Density { get; set; }

    [Parameter(ParameterSetName = AdapterSet)]
    public MajoritySign? MajoritySign { get; set; }

    [Parameter(ParameterSetName = AdapterSet)]
    [ValidateRange(0.0, 1.0)]
    public double? Clamp { get; set; }

    [Parameter(ParameterSetName = AdapterSet)]
    public long? Seed { get; set; }

    [Parameter(ParameterSetName = AdapterSet)]
    [ArgumentCompleter(typeof(ComputeDeviceCompleter))]
    public ComputeDevice Device { get; set; } = ComputeDevice.Auto;

    [Parameter(ParameterSetName = AdapterSet)]
    public SwitchParameter DenseSvd { get; set; }

    [Parameter(ParameterSetName = AdapterSet)]
    [ValidateRange(1, int.MaxValue)]
    public int Restarts { get; set; } = new KMeansOptions().Restarts;

    [Parameter(ParameterSetName = AdapterSet)]
    [ValidateRange(1, int.MaxValue)]
    public int MaxIterations { get; set; } = new KMeansOptions().MaxIterations;

    [Parameter(ParameterSetName = AdapterSet)]
    [ValidateRange(0.0, double.MaxValue)]
    public double Tolerance { get; set; } = new KMeansOptions().Tolerance;

    [Parameter]
    public SwitchParameter ParameterReweight { get; set; } = new LegoOptions().ParameterReweight;

    [Parameter]
    public SwitchParameter OutputReweight { get; set; } = new LegoOptions().OutputReweight;

    [Parameter]
    public LegoTarget Target { get; set; } = LegoTarget.Mean;

    [Parameter(ParameterSetName = AdapterSet)]
    public UnitNorm Norm { get; set; } = UnitNorm.LInfinity;

    [Parameter(ParameterSetName = AdapterSet)]
    public ClusteringSpace Space { get; set; } = ClusteringSpace.Normalized;

    [Parameter(ParameterSetName = AdapterSet)]
    [SupportsWildcards]
    public string? Module { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    protected override void ProcessRecord()
    {
        if (ParameterSetName == OtherInputSet)
            WriteWrongInput(InputObject, Takes);
        else if (ParameterSetName == ClusterSet)
            _clusters.AddRange(Cluster);
        else
            _adapters.AddRange(Adapter);
    }

    protected override void EndProcessing()
    {
        if (ParameterSetName == OtherInputSet)
            return;
        try
        {
            var named = ParameterSetName == ClusterSet
                ? _clusters.SelectMany(c => c.Units).Select(u => (u.Adapter, u.AdapterConfig?.BaseModel))
                : _adapters.Select(a => (a.Name, a.BaseModel));
            if (BaseModelAgreement.Disagreement(named) is { } disagreement)
                WriteWarning($"{disagreement}; the merged adapter names the first input's");
            var merged = ParameterSetName == ClusterSet ? MergeClusters() : MergeAdapters();
            WriteVerbose($"{merged.Name}: {merged.ModuleCount} modules, {merged.ParameterCount} parameters");
            WriteObject(merged);
        }
        catch (Exception ex) when (IsLoraError(ex, "Merge-Lora", out var e))
        {
            ThrowLoraError(e);
        }
        catch (OperationCanceledException) when (Cancellation.IsCancellationRequested)
        {
            // Ctrl+C: PowerShell is already stopping the pipeline; nothing was written.
        }
        finally
        {
            WriteProgress(new ProgressRecord(1, "Merge-Lora", "done") { RecordType = ProgressRecordType.Completed });
        }
    }

    private LoraAdapter MergeAdapters()
    {
        if (_adapters.Count == 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, "no adapters to merge");
        if (Weight is not null && Weight.Length != _adapters.Count)
            throw new LoraException(LoraErrorKind.InvalidArgument, null,
                $"-Weight has {Weight.Length} values for {_adapters.Count} adapters ({string.Join(", ", _adapters.Select(a => a.Name))}); give one per adapter, in pipeline order");
        var inputs = _adapters.Select((a, i) => new MergeInput(a, Weight?[i] ?? 1.0)).ToList();
        WarnAboutModules(inputs);
        WriteVerbose($"Merging {string.Join(", ", inputs.Select(i => $"{i.Adapter.Name} (weight {i.Weight})"))} with {Method}");
        if (Method == LoraMergeMethod.Lego)
        {
            RefuseStandardOnly();
            return LegoMerge.Merge(inputs, LegoOptionsFromParameters(), Name ?? "lego", WriteVerbose, ReportProgress, Cancellation);
        }
        RefuseLegoOnly();
        return StandardMerge.Merge(inputs, Method.ToStandard(), new MergeOptions
        {
            Name = Name ?? "merged",
            Rank = Rank,
            Density = Density,
            MajoritySign = MajoritySign,
            Clamp = Clamp,
            Seed = Seed,
            Device = Device,
            DenseSvd = DenseSvd,
            Verbose = WriteVerbose,
            Progress = ReportProgress,
            CancellationToken = Cancellation,
        });
    }

    // Refuses a -Module filter that matches nothing (the merge would be an adapter without modules),
    // and warns where the inputs share no module, or where -Rank asks Lego for more clusters than a module has units.
    private void WarnAboutModules(IReadOnlyList<MergeInput> inputs)
    {
        var filter = new Core.Units.ModuleFilter(Module);
        var keys = MergeInput.ModuleKeys(inputs).Where(filter.Matches).ToList();
        if (keys.Count == 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, "-Module",
                $"'{Module}' matches none of the modules of {string.Join(", ", inputs.Select(i => i.Adapter.Name).Distinct())} (such as '{MergeInput.ModuleKeys(inputs).FirstOrDefault()}'); the merge would have no modules",
                errorId: "NoModuleMatches");
        if (inputs.Select(i => i.Adapter.Name).Distinct().Count() > 1 && !keys.Any(k => inputs.All(i => i.Adapter.GetModule(k) is not null)))
            WriteWarning($"{string.Join(", ", inputs.Select(i => i.Adapter.Name).Distinct())} have no module in common: each module of the merge comes from one adapter alone (were they trained on the same base model and target modules?)");
        if (Method == LoraMergeMethod.Lego && Rank is { } k)
        {
            var units = keys.Select(key => inputs.Where(i => i.Weight != 0).Sum(i => i.Adapter.GetModule(key)?.Rank ?? 0)).ToList();
            int fewer = units.Count(n => n < k);
            if (fewer > 0)
                WriteWarning($"-Rank {k} is more than the {units.Where(n => n < k).Max()} units of {(fewer == units.Count ? "every module" : $"{fewer} of {units.Count} modules")}: " +
                    $"{(fewer == 1 ? "it keeps" : "they keep")} every unit as its own cluster (merged rank = unit count), as without -Rank");
        }
    }

    private LoraAdapter MergeClusters()
    {
        if (Method != LoraMergeMethod.Lego)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"clustered modules are merged by LoRA-LEGO; -Method {Method} takes adapters");
        if (Rank is not null)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, "the clusters already fix each module's rank; set -K on Invoke-RankCluster");
        var options = new LegoOptions { ParameterReweight = ParameterReweight, OutputReweight = OutputReweight, Target = Target };
        return LegoMerge.Merge(_clusters, null, options, Name ?? "lego", WriteVerbose, ReportProgress, Cancellation);
    }

    private LegoOptions LegoOptionsFromParameters() => new()
    {
        Clustering = ClusteringParameters.Options(Rank, Restarts, MaxIterations, Tolerance, unchecked((ulong)(Seed ?? 0)), Space, Norm, Device),
        ParameterReweight = ParameterReweight,
        OutputReweight = OutputReweight,
        Target = Target,
        ModuleFilter = Module,
    };

    private void RefuseLegoOnly()
    {
        foreach (var name in LegoOnly.Where(MyInvocation.BoundParameters.ContainsKey))
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"-{name} applies to -Method Lego only, not {Method}");
    }

    private void RefuseStandardOnly()
    {
        foreach (var name in new[] { nameof(Density), nameof(MajoritySign), nameof(Clamp), nameof(DenseSvd) }.Where(MyInvocation.BoundParameters.ContainsKey))
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"-{name} applies to the PEFT methods, not Lego");
    }

    private void ReportProgress(MergeProgress p) =>
        WriteProgress(new ProgressRecord(1, $"Merge-Lora ({Method})", $"module {p.ModuleIndex + 1} of {p.ModuleCount}: {p.ModuleKey}")
        {
            PercentComplete = p.ModuleCount == 0 ? 100 : p.ModuleIndex * 100 / p.ModuleCount,
        });
}
