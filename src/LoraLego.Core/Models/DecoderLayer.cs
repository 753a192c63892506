using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>One pre-norm transformer block: x + attention(norm(x)), then + mlp(norm(...)).</summary>
internal sealed class DecoderLayer : IDisposable
{
    private readonly RmsNorm _inputNorm;
    private readonly RmsNorm _postAttentionNorm;

    public DecoderLayer(RmsNorm inputNorm, Attention attention, RmsNorm postAttentionNorm, SwiGluMlp mlp)
    {
        _inputNorm = inputNorm;
        Attention = attention;
        _postAttentionNorm = postAttentionNorm;
        Mlp = mlp;
    }

    public Attention Attention { get; }

    public SwiGluMlp Mlp { get; }

    public IEnumerable<AdaptedLinear> LinearLayers =>
        [Attention.Query, Attention.Key, Attention.Value, Attention.Output, Mlp.Gate, Mlp.Up, Mlp.Down];

    public Tensor Forward(Tensor hidden, Tensor cos, Tensor sin, Tensor mask)
    {
        using var scope = NewDisposeScope();
        var attended = hidden.add(Attention.Forward(_inputNorm.Forward(hidden), cos, sin, mask));
        // Out of place: the norm keeps attended for its backward pass when a mixture's gates train.
        return attended.add(Mlp.Forward(_postAttentionNorm.Forward(attended))).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        _inputNorm.Dispose();
        Attention.Dispose();
        _postAttentionNorm.Dispose();
        Mlp.Dispose();
    }
}
