using LoraLego.Core.Mixture;

namespace LoraLego.Completion;

/// <summary>The experts of the mixture given to -Mixture, for Set-LoraMixture -Disable/-Enable.</summary>
public sealed class ExpertNameCompleter() : BoundValueCompleter<LoraMixture>("Mixture")
{
    protected override IEnumerable<string> NamesOf(LoraMixture value) => value.ExpertNames;
}
