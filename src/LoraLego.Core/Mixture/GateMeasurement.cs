namespace LoraLego.Core.Mixture;

/// <summary>Gate values measured on data by <see cref="GateMeter"/>.</summary>
/// <param name="Gates">Each gate's mean values per expert over all real tokens.</param>
/// <param name="RowShares">Per row, in input order: its mean gate value per expert over all gates and its tokens.</param>
/// <param name="Experts">Expert names, the order of every row share.</param>
public sealed record GateMeasurement(IReadOnlyList<GateUsage> Gates, IReadOnlyList<double[]> RowShares, IReadOnlyList<string> Experts)
{
    /// <summary>The JSONL file measured, or null for rows given in memory.</summary>
    public string? Data { get; init; }

    public int Rows => RowShares.Count;

    /// <summary>Real tokens measured.</summary>
    public long Tokens => Gates.Count == 0 ? 0 : Gates[0].Tokens;

    /// <summary>
    /// Per expert, in <see cref="Experts"/> order, the fraction of rows whose largest share goes to
    /// it: how the mixture routes these rows, at a glance.
    /// </summary>
    public IReadOnlyList<double> Routed => Experts.Select((_, i) => FractionRoutedTo(i)).ToList();

    /// <summary>Each expert's name and routed fraction, e.g. "a 0.969  b 0.031".</summary>
    public string Summary => string.Join("  ", Experts.Select((e, i) => $"{e} {FractionRoutedTo(i):F3}"));

    /// <summary>The fraction of rows whose largest share goes to <paramref name="expert"/>.</summary>
    public double FractionRoutedTo(string expert) => FractionRoutedTo(ExpertIndex.Of(Experts, expert));

    private double FractionRoutedTo(int index) =>
        RowShares.Count == 0 ? 0 : RowShares.Count(s => Array.IndexOf(s, s.Max()) == index) / (double)RowShares.Count;

    public override string ToString() => $"{Data ?? "rows"}: {Rows} rows routed {Summary}; {string.Join("; ", Gates)}";
}
