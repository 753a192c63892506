using System.Management.Automation;
using LoraLego.Completion;
using LoraLego.Core.Adapters;
using LoraLego.Core.Compute;
using LoraLego.Core.Models;
using LoraLego.Core.Surgery;

namespace LoraLego.Commands;

[Cmdlet(VerbsCommon.New, "LoraFromModel")]
[OutputType(typeof(LoraAdapter))]
public sealed class NewLoraFromModelCommand : LoraCmdlet
{
    /// <summary>The fine-tuned model (its merged-mounted adapters count as part of its weights).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public BaseModel Model { get; set; } = null!;

    [Parameter(Mandatory = true)]
    [ValidateNotNull]
    public BaseModel BaseModel { get; set; } = null!;

    /// <summary>Ranks per module; with -Energy, the most a module may keep.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int Rank { get; set; } = 16;

    [Parameter]
    [ValidateRange(0.0, 1.0)]
    public double? Energy { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Module { get; set; }

    [Parameter]
    [ArgumentCompleter(typeof(ComputeDeviceCompleter))]
    public ComputeDevice Device { get; set; } = ComputeDevice.Auto;

    [Parameter]
    public long Seed { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = "extracted";

    protected override void ProcessRecord()
    {
        var options = new ExtractionOptions
        {
            Rule = Energy is { } e ? RankRule.Energy(e, Rank) : RankRule.Fixed(Rank),
            Module = Module,
            Device = Device,
            Seed = Seed,
            Warn = WriteWarning,
        };
        Guard(Model.Path, () =>
        {
            WriteVerbose($"Extracting {Name} from {Model.Path} against {BaseModel.Path}: {options.Rule}, modules '{Module ?? "*"}'");
            var changes = new List<ModuleRankChange>();
            try
            {
                var adapter = LoraExtractor.Extract(Model, BaseModel, options, Name, c =>
                {
                    changes.Add(c);
                    WriteVerbose(c.ToString());
                }, WriteVerbose, p => WriteProgress(SurgeryProgressRecords.Of("New-LoraFromModel", p)), Cancellation);
                var result = PSObject.AsPSObject(adapter);
                result.Properties.Add(new PSNoteProperty("RankChanges", changes.ToArray()));
                WriteObject(result);
            }
            catch (OperationCanceledException) when (Cancellation.IsCancellationRequested)
            {
                // Ctrl+C: the pipeline is already stopping.
            }
            finally
            {
                WriteProgress(SurgeryProgressRecords.Done("New-LoraFromModel"));
            }
        });
    }
}
