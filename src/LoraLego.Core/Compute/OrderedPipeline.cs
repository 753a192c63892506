using System.Collections.Concurrent;

namespace LoraLego.Core.Compute;

/// <summary>
/// A lazy map over a sequence whose items are worked on by up to <c>degree</c> pool threads at once (started up to twice
/// that many ahead) and handed back in
/// the sequence's order on the enumerating thread: the caller's callbacks (progress, verbose, a PowerShell cmdlet's
/// writes) stay on that thread, and the results do not depend on which thread made them.
/// </summary>
internal static class OrderedPipeline
{
    /// <param name="source">Enumerated on the calling thread, at most twice <paramref name="degree"/> items ahead of the results handed on.</param>
    /// <param name="newState">A worker's reusable state (a buffer): at most <paramref name="degree"/> are made, each used by one item at a time.</param>
    /// <param name="map">The work on one item. Its error surfaces when its result is reached, as if the item were worked on then.</param>
    public static IEnumerable<TResult> Map<TSource, TState, TResult>(IEnumerable<TSource> source, int degree, Func<TState> newState,
        Func<TSource, TState, TResult> map)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(degree, 1);
        var idle = new ConcurrentBag<TState>();
        var inFlight = new Queue<Task<TResult>>();
        // Items are started up to twice the degree ahead of the one handed on next, of which degree run at once: a
        // worker whose item finished before an earlier, longer one takes the next item instead of waiting for it.
        using var running = new SemaphoreSlim(degree);
        Task<TResult> Start(TSource item) => Task.Run(async () =>
        {
            await running.WaitAsync().ConfigureAwait(false);
            var state = idle.TryTake(out var kept) ? kept : newState();
            try
            {
                return map(item, state);
            }
            finally
            {
                idle.Add(state);
                running.Release();
            }
        });
        try
        {
            foreach (var item in source)
            {
                if (inFlight.Count == 2 * degree)
                    yield return inFlight.Dequeue().GetAwaiter().GetResult();
                inFlight.Enqueue(Start(item));
            }
            while (inFlight.Count > 0)
                yield return inFlight.Dequeue().GetAwaiter().GetResult();
        }
        finally
        {
            // Stopped early (an error, a cancellation, a consumer that stopped): the work in flight ends before the
            // enumeration does, so nothing still writes into a state or reads a file the caller goes on to change.
            foreach (var task in inFlight)
                try
                {
                    task.Wait();
                }
                catch (AggregateException)
                {
                }
        }
    }
}
