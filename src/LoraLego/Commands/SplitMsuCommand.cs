using System.Management.Automation;
using LoraLego.Completion;
using LoraLego.Core;
using LoraLego.Core.Adapters;
using LoraLego.Core.Merging;
using LoraLego.Core.Units;

namespace LoraLego.Commands;

[Cmdlet(VerbsCommon.Split, "Msu")]
[OutputType(typeof(Msu))]
public sealed class SplitMsuCommand : LoraCmdlet
{
    private readonly List<LoraAdapter> _adapters = [];

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNullOrEmpty]
    public LoraAdapter[] Adapter { get; set; } = [];

    /// <summary>Only modules whose key matches (wildcards).</summary>
    [Parameter]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ModuleKeyCompleter))]
    public string? Module { get; set; }

    /// <summary>One weight per adapter, folded into its units' scaling (default 1).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public double[]? Weight { get; set; }

    protected override void ProcessRecord() => _adapters.AddRange(Adapter);

    // Units go out module by module across every input adapter, so Invoke-RankCluster downstream
    // sees one module's whole pool at a time and never needs every module in memory.
    protected override void EndProcessing()
    {
        try
        {
            if (Weight is not null && Weight.Length != _adapters.Count)
                throw new LoraException(LoraErrorKind.InvalidArgument, null, $"-Weight has {Weight.Length} values for {_adapters.Count} adapters; give one per adapter, in pipeline order");
            var inputs = _adapters.Select((a, i) => new MergeInput(a, Weight?[i] ?? 1.0)).ToList();
            if (Module is not null && !MergeInput.ModuleKeys(inputs).Any(new ModuleFilter(Module).Matches))
                throw new LoraException(LoraErrorKind.InvalidArgument, "-Module",
                    $"'{Module}' matches none of the modules of {string.Join(", ", _adapters.Select(a => a.Name).Distinct())} (such as '{MergeInput.ModuleKeys(inputs).FirstOrDefault()}')",
                    errorId: "NoModuleMatches");
            int modules = 0;
            foreach (var pool in MsuSplitter.Pools(inputs, Module))
            {
                WriteVerbose($"{pool.ModuleKey}: {pool.Count} units from {string.Join(", ", pool.Units.Select(u => u.Adapter).Distinct())}");
                WriteProgress(new ProgressRecord(3, "Split-Msu", pool.ModuleKey) { PercentComplete = -1 });
                WriteObject(pool.Units, enumerateCollection: true);
                modules++;
            }
        }
        catch (Exception ex) when (IsLoraError(ex, "Split-Msu", out var e))
        {
            ThrowLoraError(e);
        }
        finally
        {
            WriteProgress(new ProgressRecord(3, "Split-Msu", "done") { RecordType = ProgressRecordType.Completed });
        }
    }
}
