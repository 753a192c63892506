using System.Management.Automation;
using LoraLego.Core;
using LoraLego.Core.Adapters;
using LoraLego.Core.Models;

namespace LoraLego.Commands;

[Cmdlet(VerbsData.Mount, "Lora")]
[OutputType(typeof(BaseModel))]
public sealed class MountLoraCommand : LoraCmdlet
{
    private int _index;

    [Parameter(Mandatory = true)]
    [ValidateNotNull]
    public BaseModel Model { get; set; } = null!;

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNullOrEmpty]
    public LoraAdapter[] Adapter { get; set; } = [];

    /// <summary>One weight per adapter, in pipeline order (default 1).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public double[]? Weight { get; set; }

    /// <summary>Adds the updates into the base weights instead of running them beside them.</summary>
    [Parameter]
    public SwitchParameter Merge { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var adapter in Adapter)
        {
            int index = _index++;
            Guard(adapter.Name, () =>
            {
                if (Weight is not null && index >= Weight.Length)
                    throw new LoraException(LoraErrorKind.InvalidArgument, adapter.Name, $"-Weight has {Weight.Length} values but this is adapter {index + 1}; give one per adapter");
                double weight = Weight?[index] ?? 1.0;
                var mode = Merge ? AttachMode.Merged : AttachMode.Unmerged;
                WriteVerbose($"Attaching {adapter.Name} x{weight} ({mode}) to {Model.Architecture} at {Model.Path}");
                Model.Attach(adapter, weight, mode);
            });
        }
    }

    protected override void EndProcessing()
    {
        if (PassThru)
            WriteObject(Model);
    }
}
