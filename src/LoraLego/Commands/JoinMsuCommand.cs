using System.Management.Automation;
using LoraLego.Core;
using LoraLego.Core.Adapters;
using LoraLego.Core.Units;

namespace LoraLego.Commands;

[Cmdlet(VerbsCommon.Join, "Msu")]
[OutputType(typeof(LoraAdapter))]
public sealed class JoinMsuCommand : LoraCmdlet
{
    private readonly List<Msu> _units = [];

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNullOrEmpty]
    public Msu[] Unit { get; set; } = [];

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = "joined";

    protected override void ProcessRecord() => _units.AddRange(Unit);

    protected override void EndProcessing()
    {
        try
        {
            var adapter = MsuJoiner.Join(_units, Name);
            WriteVerbose($"{Name}: {_units.Count} units from {string.Join(", ", _units.Select(u => u.Adapter).Distinct())} joined into {adapter.ModuleCount} modules");
            WriteObject(adapter);
        }
        catch (Exception ex) when (IsLoraError(ex, Name, out var e))
        {
            ThrowLoraError(e);
        }
    }
}
