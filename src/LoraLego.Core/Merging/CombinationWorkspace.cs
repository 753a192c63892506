using LoraLego.Core.Compute;
using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// Memory one worker of a merge's fused combinations reuses from module to module: the float32 result (up to 180 MB for a
/// 7B MLP module; a fresh one per module cost a page fault per 4 KiB touched, 13% of a 7B TiesSvd's CPU time), the
/// lists that collect in-bracket entries, and the arrays of the passes and the range finder (<see cref="Kept"/>).
/// </summary>
internal sealed class CombinationWorkspace : IDisposable
{
    private Tensor? storage;
    private readonly Stack<object> spare = new();

    /// <summary>The arrays the passes, the cut's sample, the start and the range finder use again.</summary>
    public KeptArrays Kept { get; } = new();

    /// <summary>A rows x cols float32 tensor over the reused storage (contents undefined), valid until the next call.</summary>
    public Tensor Result(long rows, long cols)
    {
        long count = rows * cols;
        if (storage is null || storage.numel() < count)
        {
            storage?.Dispose();
            storage = null;
            storage = empty(count, ScalarType.Float32).DetachFromDisposeScope();
        }
        return storage.narrow(0, 0, count).view(rows, cols);
    }

    /// <summary>A spare object of type T handed back by <see cref="Return"/>, or a new one.</summary>
    public T Rent<T>() where T : class, new()
    {
        lock (spare)
            return spare.Count > 0 && spare.Peek() is T reused ? (T)spare.Pop() : new T();
    }

    public void Return(object item)
    {
        lock (spare)
            spare.Push(item);
    }

    public void Dispose() => storage?.Dispose();
}
