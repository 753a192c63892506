using System.Management.Automation;
using LoraLego.Completion;
using LoraLego.Core;
using LoraLego.Core.Models;

namespace LoraLego.Commands;

[Cmdlet(VerbsData.Dismount, "Lora")]
[OutputType(typeof(BaseModel))]
public sealed class DismountLoraCommand : LoraCmdlet
{
    [Parameter(Mandatory = true)]
    [ValidateNotNull]
    public BaseModel Model { get; set; } = null!;

    /// <summary>Names of attached adapters (wildcards); all of them when omitted.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(AttachedAdapterCompleter))]
    public string[]? Name { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        if (Name is null)
        {
            WriteVerbose($"Detaching every adapter ({string.Join(", ", Model.Adapters.Select(a => a.Name))}); merged weights are restored from the originals kept in memory");
            Model.DetachAll();
            return;
        }
        foreach (var pattern in Name)
        {
            var wildcard = WildcardPattern.Get(pattern, WildcardOptions.IgnoreCase);
            var matches = Model.Adapters.Where(a => wildcard.IsMatch(a.Name)).Select(a => a.Name).ToList();
            if (matches.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(pattern))
                WriteLoraError(new LoraException(LoraErrorKind.NotFound, pattern, $"no adapter of that name is attached (attached: {string.Join(", ", Model.Adapters.Select(a => a.Name))})"));
            foreach (var name in matches)
            {
                WriteVerbose($"Detaching {name}");
                Model.Detach(name);
            }
        }
    }

    protected override void EndProcessing()
    {
        if (PassThru)
            WriteObject(Model);
    }
}
