using System.Management.Automation;
using LoraLego.Completion;
using LoraLego.Core;
using LoraLego.Core.Clustering;
using LoraLego.Core.Compute;
using LoraLego.Core.Units;
using TorchSharp;

namespace LoraLego.Commands;

[Cmdlet(VerbsLifecycle.Invoke, "RankCluster")]
[OutputType(typeof(RankCluster))]
public sealed class InvokeRankClusterCommand : LoraCmdlet, IDisposable
{
    private readonly List<Msu> _pending = [];
    private readonly HashSet<string> _done = new(StringComparer.Ordinal);
    private RankClusterOptions _options = null!;
    private torch.Device _device = null!;
    private RankClusterQueue? _queue;

    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    [ValidateNotNullOrEmpty]
    public Msu[] Unit { get; set; } = [];

    /// <summary>Clusters per module (the merged rank); default the largest input rank of the module.</summary>
    [Parameter(Position = 0)]
    [ValidateRange(1, int.MaxValue)]
    public int? K { get; set; }

    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int Restarts { get; set; } = new KMeansOptions().Restarts;

    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int MaxIterations { get; set; } = new KMeansOptions().MaxIterations;

    [Parameter]
    [ValidateRange(0.0, double.MaxValue)]
    public double Tolerance { get; set; } = new KMeansOptions().Tolerance;

    [Parameter]
    public ulong Seed { get; set; }

    [Parameter]
    public ClusteringSpace Space { get; set; } = ClusteringSpace.Normalized;

    [Parameter]
    public UnitNorm Norm { get; set; } = UnitNorm.LInfinity;

    [Parameter]
    [ArgumentCompleter(typeof(ComputeDeviceCompleter))]
    public ComputeDevice Device { get; set; } = ComputeDevice.Auto;

    protected override void BeginProcessing()
    {
        _options = ClusteringParameters.Options(K, Restarts, MaxIterations, Tolerance, Seed, Space, Norm, Device);
        try
        {
            _device = DeviceSelector.Resolve(Device, WriteWarning);
        }
        catch (LoraException e)
        {
            ThrowLoraError(e);
        }
    }

    // Units arrive grouped by module (Split-Msu emits them so); a module starts clustering as soon as
    // the next one starts arriving, side by side with the modules before it (one per core), and the
    // results are written in module order as they are ready.
    protected override void ProcessRecord()
    {
        foreach (var unit in Unit)
        {
            if (_pending.Count > 0 && _pending[0].ModuleKey != unit.ModuleKey)
                Flush();
            if (_done.Contains(unit.ModuleKey))
            {
                WriteLoraError(new LoraException(LoraErrorKind.InvalidArgument, unit.ModuleKey,
                    "a unit of this module arrived after the module was clustered; pass each module's units together (as Split-Msu emits them)"));
                continue;
            }
            _pending.Add(unit);
        }
    }

    protected override void EndProcessing()
    {
        if (_pending.Count > 0)
            Flush();
        WriteClustered(wait: true);
        WriteProgress(new ProgressRecord(4, "Invoke-RankCluster", "done") { RecordType = ProgressRecordType.Completed });
    }

    /// <summary>Waits for clusterings still running when the pipeline stops or fails.</summary>
    public void Dispose() => _queue?.Dispose();

    private void Flush()
    {
        var pool = new MsuPool(_pending[0].ModuleKey, [.. _pending]);
        _pending.Clear();
        _done.Add(pool.ModuleKey);
        WriteProgress(new ProgressRecord(4, "Invoke-RankCluster", $"{pool.ModuleKey}: {pool.Count} units") { PercentComplete = -1 });
        _queue ??= new RankClusterQueue(_options, _device);
        if (_queue.Full)
            WriteOldest();
        _queue.Add(pool);
        WriteClustered(wait: false);
    }

    // The clustered modules at the head of the queue, in order: those ready, or (wait) every one.
    private void WriteClustered(bool wait)
    {
        while (_queue is { Count: > 0 } && (wait || _queue.OldestDone))
            WriteOldest();
    }

    private void WriteOldest()
    {
        var pool = _queue!.Oldest;
        try
        {
            var cluster = _queue.TakeOldest();
            if (cluster.Message is not null)
                WriteWarning($"{pool.ModuleKey}: {cluster.Message}");
            WriteVerbose($"{pool.ModuleKey}: {pool.Count} units -> k {cluster.K}, inertia {cluster.Inertia:G4}, {cluster.Iterations} iterations");
            WriteObject(cluster);
        }
        catch (Exception ex) when (IsLoraError(ex, pool.ModuleKey, out var e))
        {
            WriteLoraError(e, pool.ModuleKey);
        }
    }
}
