using System.Buffers;
using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// Memory a merge's fused combinations reuse from module to module: the float32 result (up to 180 MB for a 7B MLP
/// module; a fresh one per module cost a page fault per 4 KiB touched, 13% of a 7B TiesSvd's CPU time) and the lists
/// and arrays that hold in-bracket entries (allocated afresh per module they were tens of MB of garbage a module, held
/// in the large-object heap until a full collection: 300 MB more peak memory).
/// </summary>
internal sealed class CombinationWorkspace : IDisposable
{
    private Tensor? storage;
    private readonly Stack<object> spare = new();
    private readonly List<Action> returns = [];

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

    /// <summary>An array of at least <paramref name="count"/> from the shared pool, held until <see cref="ReturnArrays"/>.</summary>
    public T[] Rent<T>(int count)
    {
        var array = ArrayPool<T>.Shared.Rent(count);
        lock (returns)
            returns.Add(() => ArrayPool<T>.Shared.Return(array));
        return array;
    }

    public void ReturnArrays()
    {
        lock (returns)
        {
            returns.ForEach(r => r());
            returns.Clear();
        }
    }

    public void Dispose() => storage?.Dispose();
}
