using System.Buffers;
using LoraLego.Core.Units;
using static TorchSharp.torch;

namespace LoraLego.Core.Clustering;

/// <summary>
/// The float32 rows buffer that the clusterings of one worker share, module after module: it grows
/// to the widest module's rows once, so later modules write into pages already faulted in. A merge
/// that clusters several modules at once gives each worker its own. The buffer is rented from the
/// shared array pool and given back on disposal, so a session's next merge finds its pages faulted
/// in too (a 7B module's rows are 8 MB a worker). Where the clustering runs on a GPU, the rows go there through a
/// page-locked buffer the worker keeps as well (<see cref="Staging"/>).
/// </summary>
/// <param name="gramThreads">The threads that share one module's Gram products: libtorch's thread count where one
/// module is clustered at a time, 1 where each of several workers clusters its own.</param>
internal sealed class ClusterWorkspace(int? gramThreads = null) : IDisposable
{
    private float[] _rows = [];
    private Tensor? _staging;

    public int GramThreads { get; } = gramThreads ?? get_num_threads();

    /// <summary>The rows of <paramref name="pool"/> (<see cref="MsuPool.WidenRows"/>), read now; the buffer stays the pool's until the next call.</summary>
    public float[] Rows(MsuPool pool)
    {
        int length = RowsLength(pool.Count, pool.OutFeatures, pool.InFeatures);
        if (_rows.Length < length)
        {
            Release();
            _rows = ArrayPool<float>.Shared.Rent(length);
        }
        pool.WidenRows(_rows.AsSpan(0, length));
        return _rows;
    }

    /// <summary>
    /// A page-locked float32 CPU tensor of at least <paramref name="length"/> values, kept for the worker's next modules.
    /// A copy to a GPU from pageable memory goes through the driver's own staging buffer, one module after another
    /// whatever the number of workers (a 7B merge moves 1.7 GB of rows); from page-locked memory it is one transfer.
    /// </summary>
    public Tensor Staging(long length)
    {
        if (_staging is null || _staging.numel() < length)
        {
            _staging?.Dispose();
            using var pageable = empty(length, ScalarType.Float32);
            _staging = pageable.pin_memory().DetachFromDisposeScope();
        }
        return _staging;
    }

    public void Dispose()
    {
        Release();
        _staging?.Dispose();
        _staging = null;
    }

    private void Release()
    {
        if (_rows.Length > 0)
            ArrayPool<float>.Shared.Return(_rows);
        _rows = [];
    }

    /// <summary>The float32 values of a pool of <paramref name="units"/> units of one module's shape.</summary>
    public static int RowsLength(int units, int outFeatures, int inFeatures) => units * (outFeatures + inFeatures);
}
