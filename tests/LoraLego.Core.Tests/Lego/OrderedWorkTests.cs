using LoraLego.Core.Compute;

namespace LoraLego.Core.Tests.Lego;

/// <summary>The map that clusters a merge's modules side by side: order, bounds on the work in flight, errors and early stops.</summary>
public class OrderedWorkTests
{
    [Fact]
    public void Results_come_in_the_sources_order_with_at_most_degree_items_and_states_in_use()
    {
        int running = 0, mostRunning = 0, states = 0;
        var results = OrderedWork.Map(Enumerable.Range(0, 40), 3, () => Interlocked.Increment(ref states), (item, state) =>
        {
            int now = Interlocked.Increment(ref running);
            lock (this)
                mostRunning = Math.Max(mostRunning, now);
            // The first items wait for a full house (the pool adds threads within seconds where other tests hold them),
            // so that a map running more than the degree at once would show; later items finish first, so that order
            // comes from the map and not from the timing.
            if (item < 3)
                SpinWait.SpinUntil(() => Volatile.Read(ref running) >= 3, TimeSpan.FromSeconds(20));
            Thread.Sleep((40 - item) % 7);
            Interlocked.Decrement(ref running);
            return item * item;
        }).ToList();
        Assert.Equal(Enumerable.Range(0, 40).Select(i => i * i), results);
        Assert.Equal(3, mostRunning);
        Assert.Equal(3, states);
    }

    [Fact]
    public void An_items_error_surfaces_at_its_place_after_the_results_before_it()
    {
        var seen = new List<int>();
        var e = Assert.Throws<InvalidDataException>(() =>
        {
            foreach (int result in OrderedWork.Map(Enumerable.Range(0, 10), 4, () => 0,
                         (item, _) => item == 5 ? throw new InvalidDataException("item 5") : item))
                seen.Add(result);
        });
        Assert.Equal("item 5", e.Message);
        Assert.Equal([0, 1, 2, 3, 4], seen);
    }

    [Fact]
    public void A_consumer_that_stops_early_gets_back_only_once_the_work_in_flight_has_ended()
    {
        int started = 0, ended = 0;
        var first = OrderedWork.Map(Enumerable.Range(0, 100), 4, () => 0, (item, _) =>
        {
            Interlocked.Increment(ref started);
            Thread.Sleep(item == 0 ? 0 : 30);
            Interlocked.Increment(ref ended);
            return item;
        }).First();
        Assert.Equal(0, first);
        // Up to twice the degree are started ahead of the first result, four at a time.
        Assert.InRange(started, 1, 8);
        Assert.Equal(started, Volatile.Read(ref ended));
    }

    private sealed class CountedState : IDisposable
    {
        public int Disposals;

        public void Dispose() => Disposals++;
    }

    [Fact]
    public void Disposable_states_are_disposed_once_when_the_map_ends_and_not_before()
    {
        var made = new List<CountedState>();
        var results = OrderedWork.Map(Enumerable.Range(0, 20), 3, () =>
        {
            var state = new CountedState();
            lock (made)
                made.Add(state);
            return state;
        }, (item, state) => state.Disposals == 0 ? item : throw new ObjectDisposedException("a state in use"));
        Assert.Equal(Enumerable.Range(0, 20), results.ToList());
        Assert.NotEmpty(made);
        Assert.All(made, state => Assert.Equal(1, state.Disposals));
    }
}
