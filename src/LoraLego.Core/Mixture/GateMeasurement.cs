namespace LoraLego.Core.Mixture;

/// <summary>Gate values measured on data by <see cref="GateMeter"/>.</summary>
/// <param name="Gates">Each gate's mean values per expert over all real tokens.</param>
/// <param name="RowShares">Per row, in input order: its mean gate value per expert over all gates and its tokens.</param>
/// <param name="Experts">Expert names, the order of every row share.</param>
public sealed record GateMeasurement(IReadOnlyList<GateUsage> Gates, IReadOnlyList<double[]> RowShares, IReadOnlyList<string> Experts)
{
    /// <summary>The fraction of rows whose largest share goes to <paramref name="expert"/>.</summary>
    public double FractionRoutedTo(string expert)
    {
        int index = ExpertIndex.Of(Experts, expert);
        return RowShares.Count == 0 ? 0 : RowShares.Count(s => Array.IndexOf(s, s.Max()) == index) / (double)RowShares.Count;
    }
}
