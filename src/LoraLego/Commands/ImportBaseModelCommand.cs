using System.Management.Automation;
using LoraLego.Completion;
using LoraLego.Core.Compute;
using LoraLego.Core.Models;

namespace LoraLego.Commands;

[Cmdlet(VerbsData.Import, "BaseModel")]
[OutputType(typeof(BaseModel))]
public sealed class ImportBaseModelCommand : LoraCmdlet
{
    /// <summary>A Hugging Face model folder: config.json and model.safetensors (or a sharded index).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("PSPath", "FullName")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    [Parameter]
    public ModelDType DType { get; set; } = ModelDType.Float32;

    [Parameter]
    [ArgumentCompleter(typeof(ComputeDeviceCompleter))]
    public ComputeDevice Device { get; set; } = ComputeDevice.Auto;

    protected override void ProcessRecord()
    {
        string folder = SessionState.Path.GetUnresolvedProviderPathFromPSPath(Path);
        Guard(folder, () =>
        {
            WriteVerbose($"Loading {folder} as {DType} on {Device}; weights are memory-mapped and load on first use");
            var model = BaseModel.Load(folder, new BaseModelOptions { DType = DType, Device = Device, Warn = WriteWarning });
            WriteVerbose($"{model.Architecture}: {model.Config.LayerCount} layers, hidden {model.Config.HiddenSize}, {model.ParameterCount} parameters on {model.Device}");
            WriteObject(model);
        });
    }
}
