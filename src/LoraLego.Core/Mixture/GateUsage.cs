namespace LoraLego.Core.Mixture;

/// <summary>How much one gate used each expert: its mean value per expert over the tokens it saw.</summary>
/// <param name="Gate">The gate's key (model.layers.N, or a module's path).</param>
/// <param name="Experts">Expert names, in the mixture's order.</param>
/// <param name="Means">Mean gate value per expert; they sum to 1 over the enabled experts.</param>
/// <param name="Tokens">Tokens the means are over; 0 for an untrained gate, whose values are uniform whatever the input.</param>
public sealed record GateUsage(string Gate, IReadOnlyList<string> Experts, IReadOnlyList<double> Means, long Tokens)
{
    /// <summary>The mean gate value of the expert named <paramref name="expert"/>.</summary>
    public double MeanOf(string expert) => Means[ExpertIndex.Of(Experts, expert)];

    /// <summary>Each expert's name and mean, e.g. "a 0.612  b 0.388".</summary>
    public string Summary => string.Join("  ", Experts.Select((e, i) => $"{e} {Means[i]:F3}"));

    public override string ToString() => $"{Gate}: {Summary}";
}
