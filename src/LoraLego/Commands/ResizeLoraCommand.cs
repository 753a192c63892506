using System.Management.Automation;
using LoraLego.Core.Adapters;
using LoraLego.Core.Surgery;

namespace LoraLego.Commands;

[Cmdlet(VerbsCommon.Resize, "Lora", DefaultParameterSetName = RankSet)]
[OutputType(typeof(LoraAdapter))]
public sealed class ResizeLoraCommand : LoraCmdlet
{
    private const string RankSet = "Rank";
    private const string EnergySet = "Energy";
    private const string ThresholdSet = "RelativeThreshold";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public LoraAdapter Adapter { get; set; } = null!;

    /// <summary>The new rank; with -Energy or -RelativeThreshold, the most ranks a module may keep.</summary>
    [Parameter(Mandatory = true, ParameterSetName = RankSet)]
    [Parameter(ParameterSetName = EnergySet)]
    [Parameter(ParameterSetName = ThresholdSet)]
    [ValidateRange(1, int.MaxValue)]
    public int? Rank { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = EnergySet)]
    [ValidateRange(0.0, 1.0)]
    public double Energy { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ThresholdSet)]
    [ValidateRange(0.0, 1.0)]
    public double RelativeThreshold { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    protected override void ProcessRecord()
    {
        var rule = ParameterSetName switch
        {
            EnergySet => RankRule.Energy(Energy, Rank),
            ThresholdSet => RankRule.RelativeThreshold(RelativeThreshold, Rank),
            _ => RankRule.Fixed(Rank!.Value),
        };
        Guard(Adapter.Name, () =>
        {
            WriteVerbose($"Resizing {Adapter.Name} ({Adapter.ModuleCount} modules) to {rule}");
            var changes = new List<ModuleRankChange>();
            try
            {
                var resized = LoraResizer.Resize(Adapter, rule, Name, c =>
                {
                    changes.Add(c);
                    WriteVerbose(c.ToString());
                }, p => WriteProgress(SurgeryProgressRecords.Of("Resize-Lora " + Adapter.Name, p)), Cancellation);
                var result = PSObject.AsPSObject(resized);
                result.Properties.Add(new PSNoteProperty("RankChanges", changes.ToArray()));
                WriteObject(result);
            }
            catch (OperationCanceledException) when (Cancellation.IsCancellationRequested)
            {
                // Ctrl+C: the pipeline is already stopping.
            }
            finally
            {
                WriteProgress(SurgeryProgressRecords.Done("Resize-Lora " + Adapter.Name));
            }
        });
    }
}
