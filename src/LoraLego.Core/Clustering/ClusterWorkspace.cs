namespace LoraLego.Core.Clustering;

/// <summary>
/// The float64 rows buffer that the clusterings of one merge share, module after module: it grows
/// to the widest module's rows once, so later modules write into pages already faulted in.
/// </summary>
internal sealed class ClusterWorkspace
{
    private double[] _rows = [];

    /// <summary>A buffer of at least <paramref name="length"/> values, its contents undefined.</summary>
    public double[] Rows(int length)
    {
        if (_rows.Length < length)
            _rows = GC.AllocateUninitializedArray<double>(length);
        return _rows;
    }
}
