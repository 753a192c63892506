using System.Management.Automation;
using LoraLego.Core.Models;
using LoraLego.Core.Surgery;

namespace LoraLego.Commands;

[Cmdlet(VerbsData.Export, "BaseModel", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(FileInfo))]
public sealed class ExportBaseModelCommand : FolderWriterCmdlet
{
    [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true)]
    [ValidateNotNull]
    public BaseModel Model { get; set; } = null!;

    [Parameter]
    public ExportDType DType { get; set; } = ExportDType.Keep;

    /// <summary>The largest weight file in bytes; a larger model is written as shards with an index.</summary>
    [Parameter]
    [ValidateRange(1L, long.MaxValue)]
    public long MaxShardSize { get; set; } = BaseModelWriter.DefaultMaxShardBytes;

    protected override void ProcessRecord()
    {
        if (ResolveOutputPath(Path) is not { } folder)
            return;
        Guard(folder, () =>
        {
            string baked = Model.Adapters.Count == 0 ? "no adapters" : string.Join(", ", Model.Adapters);
            if (!ShouldProcess(folder, $"Export {Model.Architecture} from {Model.Path} with {baked} baked in ({DType})"))
                return;
            WriteVerbose($"Writing {Model.Path} with {baked} to {folder} (dtype {DType}, shards of at most {MaxShardSize} bytes)");
            try
            {
                var files = BaseModelWriter.Write(Model, folder, DType.ToSafetensors(), MaxShardSize, Force,
                    p => WriteProgress(SurgeryProgressRecords.Of("Export-BaseModel", p)), Cancellation);
                if (PassThru)
                    // Through the provider, so the files carry the properties Get-ChildItem's view shows.
                    WriteObject(InvokeProvider.Item.Get(files.ToArray(), force: false, literalPath: true), enumerateCollection: true);
            }
            catch (OperationCanceledException) when (Cancellation.IsCancellationRequested)
            {
                // Ctrl+C: the temporary folder is gone and PowerShell is stopping the pipeline.
            }
            finally
            {
                WriteProgress(SurgeryProgressRecords.Done("Export-BaseModel"));
            }
        });
    }
}
