using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>Root-mean-square layer norm, computed in float32 whatever the model's dtype, as transformers does.</summary>
internal sealed class RmsNorm : IDisposable
{
    private readonly LazyWeight _weight;
    private readonly double _eps;

    public RmsNorm(LazyWeight weight, double eps)
    {
        _weight = weight;
        _eps = eps;
    }

    public Tensor Forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = input.to(ScalarType.Float32);
        var variance = x.pow(2).mean([-1L], keepdim: true);
        var normalized = x.mul(variance.add(_eps).rsqrt()).to(input.dtype);
        return _weight.Value.mul(normalized).MoveToOuterDisposeScope();
    }

    public void Dispose() => _weight.Dispose();
}
