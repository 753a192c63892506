using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>
/// Multi-head self-attention with grouped-query key/value heads and rotary positions. Query
/// heads are grouped per key/value head by reshaping rather than by copying keys and values
/// (transformers' repeat_kv), which gives the same head pairing: query head h reads key/value
/// head h / (heads / kv_heads).
/// </summary>
internal sealed class Attention : IDisposable
{
    private readonly int _heads;
    private readonly int _keyValueHeads;
    private readonly int _headDim;

    // Held for the layer's lifetime: TorchSharp frees a temporary Scalar in its finalizer, which can run while libtorch still reads it (TorchSharp PR #1434), so hot paths hold their Scalars in fields or locals.
    private readonly TorchSharp.Scalar _scoreScale;

    public Attention(AdaptedLinear query, AdaptedLinear key, AdaptedLinear value, AdaptedLinear output, int heads, int keyValueHeads, int headDim)
    {
        Query = query;
        Key = key;
        Value = value;
        Output = output;
        _heads = heads;
        _keyValueHeads = keyValueHeads;
        _headDim = headDim;
        _scoreScale = (1.0 / Math.Sqrt(headDim)).ToScalar();
    }

    public AdaptedLinear Query { get; }

    public AdaptedLinear Key { get; }

    public AdaptedLinear Value { get; }

    public AdaptedLinear Output { get; }

    /// <param name="hidden">[batch, seq, hidden].</param>
    /// <param name="cos">Rotary cosines, [seq, head_dim].</param>
    /// <param name="sin">Rotary sines, [seq, head_dim].</param>
    /// <param name="mask">Additive mask, [seq, seq].</param>
    public Tensor Forward(Tensor hidden, Tensor cos, Tensor sin, Tensor mask)
    {
        using var scope = NewDisposeScope();
        long batch = hidden.shape[0], length = hidden.shape[1];
        int groups = _heads / _keyValueHeads;
        var query = RotaryEmbedding.Apply(SplitHeads(Query.Forward(hidden), _heads), cos, sin)
            .view(batch, _keyValueHeads, groups, length, _headDim);
        var key = RotaryEmbedding.Apply(SplitHeads(Key.Forward(hidden), _keyValueHeads), cos, sin).unsqueeze(2);
        var value = SplitHeads(Value.Forward(hidden), _keyValueHeads).unsqueeze(2);
        var scores = query.matmul(key.transpose(-1, -2)).mul_(_scoreScale).add_(mask);
        // Softmax in float32 as transformers does, so half-precision models agree with it.
        var probabilities = scores.softmax(-1, ScalarType.Float32).to(hidden.dtype);
        var context = probabilities.matmul(value)
            .view(batch, _heads, length, _headDim)
            .transpose(1, 2)
            .reshape(batch, length, _heads * _headDim);
        return Output.Forward(context).MoveToOuterDisposeScope();
    }

    // [batch, seq, heads * head_dim] to [batch, heads, seq, head_dim]
    private Tensor SplitHeads(Tensor projected, int heads) =>
        projected.view(projected.shape[0], projected.shape[1], heads, _headDim).transpose(1, 2);

    public void Dispose()
    {
        Query.Dispose();
        Key.Dispose();
        Value.Dispose();
        Output.Dispose();
    }
}
