using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>
/// One weight of the model, read from its memory-mapped file on first use so that loading a
/// model reads only headers. The model owns the tensor; merging swaps it (see <see cref="AdaptedLinear"/>).
/// </summary>
internal sealed class LazyWeight : IDisposable
{
    private readonly ModelWeights _weights;
    private Tensor? _value;

    public LazyWeight(ModelWeights weights, string name, long[] shape)
    {
        _weights = weights;
        Name = name;
        Shape = shape;
    }

    public string Name { get; }

    public long[] Shape { get; }

    public bool IsLoaded => _value is not null;

    public Tensor Value => _value ??= _weights.Load(Name);

    /// <summary>Puts <paramref name="value"/> in place and hands back the tensor it replaces, which the caller now owns.</summary>
    public Tensor Swap(Tensor value)
    {
        var previous = Value;
        value.DetachFromDisposeScope();
        _value = value;
        return previous;
    }

    public void Dispose()
    {
        _value?.Dispose();
        _value = null;
    }
}
