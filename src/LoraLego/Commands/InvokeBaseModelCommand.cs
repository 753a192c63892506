using System.Management.Automation;
using LoraLego.Core;
using LoraLego.Core.Models;

namespace LoraLego.Commands;

[Cmdlet(VerbsLifecycle.Invoke, "BaseModel")]
[OutputType(typeof(LogitsResult))]
public sealed class InvokeBaseModelCommand : ModelCmdlet
{
    /// <summary>Token ids, one row per sequence; rows must have equal lengths.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public int[][] InputIds { get; set; } = [];

    protected override void EndProcessing()
    {
        try
        {
            var rows = InputIds.Select(r => r.Select(t => (long)t).ToArray()).ToArray();
            WriteObject(WithAdapters(() => Model.Run(rows)));
        }
        catch (Exception ex) when (IsLoraError(ex, Model.Path, out var e))
        {
            ThrowLoraError(e);
        }
    }
}
