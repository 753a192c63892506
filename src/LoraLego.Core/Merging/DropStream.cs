using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// <see cref="RandomDrop"/> for one task applied block by block, with the draws the whole-tensor drop would make: the
/// dense path draws every entry of task 0, then of task 1, ... from one generator, so each task's stream starts where
/// the previous task's draws end, and is resumed block after block.
/// </summary>
internal sealed class DropStream : IDisposable
{
    private readonly double density;
    private Tensor state;

    private DropStream(double density, Tensor state)
    {
        this.density = density;
        this.state = state;
    }

    /// <summary>
    /// One stream per task (each rows x cols, drawn in blocks of <paramref name="blockRows"/> rows), skipping the
    /// generator past each task's draws: the skip costs as many draws, never a whole task's mask in memory.
    /// </summary>
    public static IReadOnlyList<DropStream> For(IReadOnlyList<double> densities, long rows, long cols, long blockRows, Generator random)
    {
        var streams = new List<DropStream>(densities.Count);
        foreach (double density in densities)
        {
            streams.Add(new DropStream(density, random.get_state().DetachFromDisposeScope()));
            if (density >= 1)
                continue;
            for (long start = 0; start < rows; start += blockRows)
            {
                using var scope = NewDisposeScope();
                RandomDrop.Keep(empty(Math.Min(blockRows, rows - start), cols), density, random);
            }
        }
        return streams;
    }

    /// <summary>The next block of the task, dropped and rescaled; blocks must come in row-major order, each once.</summary>
    public Tensor Apply(Tensor block, Generator random)
    {
        random.set_state(state);
        var dropped = RandomDrop.Apply(block, density, random);
        state.Dispose();
        state = random.get_state().DetachFromDisposeScope();
        return dropped;
    }

    public void Dispose() => state.Dispose();
}
