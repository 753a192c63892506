using System.Management.Automation;
using LoraLego.Core;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;

namespace LoraLego.Commands;

[Cmdlet(VerbsData.Export, "Lora", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = AdapterSet)]
[OutputType(typeof(LoraAdapter))]
public sealed class ExportLoraCommand : FolderWriterCmdlet
{
    private const string AdapterSet = "Adapter";
    private const string OtherInputSet = "OtherInput";

    [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true, ParameterSetName = AdapterSet)]
    [ValidateNotNull]
    public LoraAdapter Adapter { get; set; } = null!;

    /// <summary>Pipeline input of any other type, refused with an error that says what Export-Lora takes.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = OtherInputSet, DontShow = true)]
    [AllowNull]
    [AllowEmptyString]
    public string? InputObject { get; set; }

    [Parameter]
    public ExportDType DType { get; set; } = ExportDType.Keep;

    /// <summary>The format to write; by default the adapter's own (a merge's: its inputs' when they agree, else PEFT).</summary>
    [Parameter]
    public LoraFormat? Format { get; set; }

    protected override void ProcessRecord()
    {
        if (ParameterSetName == OtherInputSet)
        {
            WriteWrongInput(InputObject, "a LoraAdapter (from Import-Lora, Merge-Lora or Join-Msu)");
            return;
        }
        if (ResolveOutputPath(Path) is not { } path)
            return;
        var format = Format ?? LoraFormats.DefaultFor(Adapter);
        string destination = LoraWriter.Destination(path, format, Adapter.Name);
        Guard(destination, () =>
        {
            // Checked before anything is written: an adapter that could not be read back, a path that cannot be written.
            LoraWriter.Validate(Adapter, format, destination);
            AtomicFile.CheckWritable(destination);
            LoraWriter.CheckDestination(destination, format, Force);
            if (!ShouldProcess(destination, $"Export LoRA adapter '{Adapter.Name}' as {format} ({Adapter.ModuleCount} modules, {DType})"))
                return;
            WriteVerbose($"Writing {Adapter.Name} to {destination} as {format} ({Adapter.ModuleCount} modules, {Adapter.ParameterCount} parameters, dtype {DType})");
            try
            {
                LoraWriter.Write(Adapter, destination, format, DType.ToSafetensors(), Cancellation);
            }
            catch (OperationCanceledException) when (Cancellation.IsCancellationRequested)
            {
                // Ctrl+C: the temporary files are gone and PowerShell is stopping the pipeline.
                return;
            }
            if (PassThru)
                WriteObject(LoraReader.Read(destination, Adapter.Name));
        });
    }
}
