using System.Management.Automation;
using LoraLego.Core;
using LoraLego.Core.Adapters;
using LoraLego.Core.Models;

namespace LoraLego.Commands;

[Cmdlet(VerbsData.Mount, "Lora")]
[OutputType(typeof(BaseModel))]
public sealed class MountLoraCommand : LoraCmdlet
{
    private readonly List<LoraAdapter> _adapters = [];

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

    protected override void ProcessRecord() => _adapters.AddRange(Adapter);

    // Attached once every adapter has arrived, so that -Weight is checked against their number before any is attached.
    protected override void EndProcessing()
    {
        if (Weight is not null && Weight.Length != _adapters.Count)
            ThrowLoraError(new LoraException(LoraErrorKind.InvalidArgument, "-Weight",
                $"has {Weight.Length} values for {_adapters.Count} adapter{(_adapters.Count == 1 ? "" : "s")} ({string.Join(", ", _adapters.Select(a => a.Name))}); give one per adapter, in pipeline order; nothing was attached",
                errorId: "WeightCount"));
        for (int index = 0; index < _adapters.Count; index++)
        {
            var adapter = _adapters[index];
            double weight = Weight?[index] ?? 1.0;
            Guard(adapter.Name, () =>
            {
                if (!double.IsFinite(weight))
                    throw new LoraException(LoraErrorKind.InvalidArgument, "-Weight", $"{weight} for {adapter.Name} is not a finite number");
                var mode = Merge ? AttachMode.Merged : AttachMode.Unmerged;
                WriteVerbose($"Attaching {adapter.Name} x{weight} ({mode}) to {Model.Architecture} at {Model.Path}");
                Model.Attach(adapter, weight, mode);
            });
        }
        if (PassThru)
            WriteObject(Model);
    }
}
