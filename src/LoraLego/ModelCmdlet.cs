using System.Management.Automation;
using LoraLego.Core;
using LoraLego.Core.Adapters;
using LoraLego.Core.Mixture;
using LoraLego.Core.Models;

namespace LoraLego;

/// <summary>
/// Cmdlets that run a base model, optionally with adapters or a mixture attached just for the
/// call: they are attached (adapters unmerged) before and detached after, so the model the user holds is left
/// as it was, whatever happens in between.
/// </summary>
public abstract class ModelCmdlet : LoraCmdlet
{
    [Parameter(Mandatory = true)]
    [ValidateNotNull]
    public BaseModel Model { get; set; } = null!;

    /// <summary>Adapters attached (unmerged) for this call only.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public LoraAdapter[]? Adapter { get; set; }

    /// <summary>One weight per adapter (default 1).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public double[]? Weight { get; set; }

    /// <summary>A mixture of LoRA experts run (with its gates) for this call only.</summary>
    [Parameter]
    [ValidateNotNull]
    public LoraMixture? Mixture { get; set; }

    protected T WithAdapters<T>(Func<T> run)
    {
        var adapters = Adapter ?? [];
        if (Weight is not null && Weight.Length != adapters.Length)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"-Weight has {Weight.Length} values for {adapters.Length} adapters; give one per adapter");
        var attached = new List<string>();
        try
        {
            for (int i = 0; i < adapters.Length; i++)
            {
                WriteVerbose($"Attaching {adapters[i].Name} (weight {Weight?[i] ?? 1.0}, unmerged) for this call");
                Model.Attach(adapters[i], Weight?[i] ?? 1.0);
                attached.Add(adapters[i].Name);
            }
            if (Mixture is null)
                return run();
            WriteVerbose($"Attaching mixture {Mixture.Name} ({string.Join(", ", Mixture.EnabledExperts)} enabled) for this call");
            using var mixture = Mixture.AttachTo(Model);
            return run();
        }
        finally
        {
            foreach (var name in attached)
                Model.Detach(name);
        }
    }
}
