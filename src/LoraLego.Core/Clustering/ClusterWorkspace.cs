using LoraLego.Core.Units;

namespace LoraLego.Core.Clustering;

/// <summary>
/// The float64 rows buffers that the clusterings of one merge share, module after module: each
/// grows to the widest module's rows once, so later modules write into pages already faulted in.
/// Two buffers take turns, so that the next module can be read (<see cref="ReadAhead"/>) on a
/// worker thread while the current one is clustered.
/// </summary>
internal sealed class ClusterWorkspace
{
    private double[] _current = [], _spare = [];
    private (MsuPool Pool, Task Read)? _next;
    private MsuPool? _following;

    /// <summary>
    /// The pools as given, each handed on with the pool after it noted, so that <see cref="Rows"/>,
    /// once it has a pool's rows, starts reading the next pool's into the spare buffer on a worker thread.
    /// </summary>
    public IEnumerable<MsuPool> ReadAhead(IEnumerable<MsuPool> pools)
    {
        MsuPool? current = null;
        foreach (var pool in pools)
        {
            if (current is not null)
            {
                _following = pool;
                yield return current;
            }
            current = pool;
        }
        _following = null;
        if (current is not null)
            yield return current;
    }

    /// <summary>The rows of <paramref name="pool"/> (<see cref="MsuPool.WidenRows"/>): those read ahead, or read now.
    /// A read's error surfaces here, as if the pool were read now. The buffer stays the pool's until the next call.</summary>
    public double[] Rows(MsuPool pool)
    {
        if (_next is { } next && ReferenceEquals(next.Pool, pool))
        {
            _next = null;
            next.Read.GetAwaiter().GetResult();
            (_current, _spare) = (_spare, _current);
        }
        else
        {
            Settle();
            _current = Grown(_current, Length(pool));
            pool.WidenRows(_current.AsSpan(0, Length(pool)));
        }
        if (_following is { } following)
        {
            _following = null;
            var buffer = _spare = Grown(_spare, Length(following));
            _next = (following, Task.Run(() => following.WidenRows(buffer.AsSpan(0, Length(following)))));
        }
        return _current;
    }

    // A prefetch not asked for (the merge stopped or moved on) is waited for, its error dropped:
    // the spare buffer is not written to by two reads at once.
    private void Settle()
    {
        if (_next is { } next)
        {
            _next = null;
            try
            {
                next.Read.Wait();
            }
            catch (AggregateException)
            {
            }
        }
    }

    private static int Length(MsuPool pool) => pool.Count * (pool.OutFeatures + pool.InFeatures);

    private static double[] Grown(double[] buffer, int length) =>
        buffer.Length < length ? GC.AllocateUninitializedArray<double>(length) : buffer;
}
