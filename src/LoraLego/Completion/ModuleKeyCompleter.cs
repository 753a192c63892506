using LoraLego.Core.Adapters;

namespace LoraLego.Completion;

/// <summary>The module keys of the adapters given to -Adapter, for Split-Msu -Module.</summary>
public sealed class ModuleKeyCompleter() : BoundValueCompleter<LoraAdapter>("Adapter")
{
    protected override IEnumerable<string> NamesOf(LoraAdapter value) => value.Modules.Select(m => m.Key);
}
