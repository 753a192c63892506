using LoraLego.Core.Models;

namespace LoraLego.Completion;

/// <summary>The adapters attached to the model given to -Model, for Dismount-Lora -Name.</summary>
public sealed class AttachedAdapterCompleter() : BoundValueCompleter<BaseModel>("Model")
{
    protected override IEnumerable<string> NamesOf(BaseModel value) => value.Adapters.Select(a => a.Name);
}
