using System.Management.Automation;
using LoraLego.Core;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;

namespace LoraLego.Commands;

[Cmdlet(VerbsData.Export, "Lora", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(LoraAdapter))]
public sealed class ExportLoraCommand : LoraCmdlet
{
    [Parameter(Mandatory = true, Position = 1, ValueFromPipeline = true)]
    [ValidateNotNull]
    public LoraAdapter Adapter { get; set; } = null!;

    /// <summary>The adapter folder to write (created if missing).</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    [Parameter]
    public ExportDType DType { get; set; } = ExportDType.Keep;

    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        string folder = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Path);
        Guard(folder, () =>
        {
            PeftAdapterWriter.CheckDestination(folder, Force);
            if (!ShouldProcess(folder, $"Export LoRA adapter '{Adapter.Name}' ({Adapter.ModuleCount} modules, {DType})"))
                return;
            WriteVerbose($"Writing {Adapter.Name} to {folder} ({Adapter.ModuleCount} modules, {Adapter.ParameterCount} parameters, dtype {DType})");
            try
            {
                PeftAdapterWriter.Write(Adapter, folder, DType.ToSafetensors(), Cancellation);
            }
            catch (OperationCanceledException) when (Cancellation.IsCancellationRequested)
            {
                // Ctrl+C: the temporary files are gone and PowerShell is stopping the pipeline.
                return;
            }
            if (PassThru)
                WriteObject(PeftAdapterReader.Read(folder, Adapter.Name));
        });
    }
}
