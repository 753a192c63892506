using System.Collections.Concurrent;

namespace LoraLego.Core.Compute;

/// <summary>
/// Items worked on by up to <c>degree</c> pool threads at once and handed back in the order they were started, on the
/// caller's thread: the caller's callbacks (progress, verbose, a PowerShell cmdlet's writes) stay on that thread, and
/// the results do not depend on which thread made them. Up to twice the degree are started ahead of the oldest, so a
/// worker whose item finished before an earlier, longer one takes the next instead of waiting for it.
/// </summary>
internal sealed class OrderedWork<TSource, TState, TResult> : IDisposable
{
    private readonly ConcurrentBag<TState> _idle = [];
    private readonly Queue<(TSource Item, Task<TResult> Work)> _started = new();
    private readonly SemaphoreSlim _running;
    private readonly Func<TState> _newState;
    private readonly Func<TSource, TState, TResult> _map;
    private readonly int _degree;

    /// <param name="newState">A worker's reusable state (a buffer): at most <paramref name="degree"/> are made, each used by one item at a time.</param>
    /// <param name="map">The work on one item.</param>
    public OrderedWork(int degree, Func<TState> newState, Func<TSource, TState, TResult> map)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(degree, 1);
        (_degree, _newState, _map) = (degree, newState, map);
        _running = new SemaphoreSlim(degree);
    }

    /// <summary>Items started and not yet taken.</summary>
    public int Count => _started.Count;

    /// <summary>Whether the oldest must be taken before another is started.</summary>
    public bool Full => _started.Count >= 2 * _degree;

    /// <summary>The oldest item not yet taken.</summary>
    public TSource Oldest => _started.Peek().Item;

    /// <summary>Whether the oldest item's work has ended (taking it then does not wait).</summary>
    public bool OldestDone => _started.Peek().Work.IsCompleted;

    /// <summary>Starts the work on <paramref name="item"/>; the caller takes the oldest first where <see cref="Full"/>.</summary>
    public void Start(TSource item)
    {
        if (Full)
            throw new InvalidOperationException("the oldest item must be taken before another is started");
        _started.Enqueue((item, Task.Run(async () =>
        {
            await _running.WaitAsync().ConfigureAwait(false);
            var state = _idle.TryTake(out var kept) ? kept : _newState();
            try
            {
                return _map(item, state);
            }
            finally
            {
                _idle.Add(state);
                _running.Release();
            }
        })));
    }

    /// <summary>The oldest item's result, waiting for it; its error is thrown here, as if the item were worked on now.</summary>
    public TResult TakeOldest() => _started.Dequeue().Work.GetAwaiter().GetResult();

    /// <summary>
    /// Waits for the work not taken (an error, a cancellation, a caller that stopped early): it ends before the caller
    /// goes on, so nothing still writes into a state or reads a file the caller goes on to change. Its errors are dropped.
    /// The workers' states that are disposable are then disposed.
    /// </summary>
    public void Dispose()
    {
        while (_started.Count > 0)
            try
            {
                _started.Dequeue().Work.Wait();
            }
            catch (AggregateException)
            {
            }
        foreach (var state in _idle)
            (state as IDisposable)?.Dispose();
        _running.Dispose();
    }
}

/// <summary>The lazy form of <see cref="OrderedWork{TSource, TState, TResult}"/> over a sequence.</summary>
internal static class OrderedWork
{
    /// <summary>
    /// How many items to work on at once, one per thread and at least <paramref name="minimum"/>, fewer where items of
    /// <paramref name="itemBytes"/> each would pass <paramref name="budgetBytes"/> together; and the threads each item's
    /// own work then shares.
    /// </summary>
    public static (int Degree, int ThreadsEach) Workers(long budgetBytes, long itemBytes, int threads, int minimum)
    {
        int degree = (int)Math.Clamp(budgetBytes / Math.Max(1, itemBytes), minimum, Math.Max(minimum, threads));
        return (degree, Math.Max(1, threads / degree));
    }

    /// <param name="source">Enumerated on the calling thread, at most twice <paramref name="degree"/> items ahead of the results handed on.</param>
    /// <param name="newState">A worker's reusable state: at most <paramref name="degree"/> are made.</param>
    /// <param name="map">The work on one item. Its error surfaces when its result is reached.</param>
    public static IEnumerable<TResult> Map<TSource, TState, TResult>(IEnumerable<TSource> source, int degree, Func<TState> newState,
        Func<TSource, TState, TResult> map)
    {
        using var work = new OrderedWork<TSource, TState, TResult>(degree, newState, map);
        foreach (var item in source)
        {
            if (work.Full)
                yield return work.TakeOldest();
            work.Start(item);
        }
        while (work.Count > 0)
            yield return work.TakeOldest();
    }
}
