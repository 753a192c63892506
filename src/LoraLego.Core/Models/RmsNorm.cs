using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>Root-mean-square layer norm, computed in float32 whatever the model's dtype, as transformers does.</summary>
internal sealed class RmsNorm : IDisposable
{
    private readonly LazyWeight _weight;
    // A field, not a double converted per call: TorchSharp frees a temporary Scalar in its finalizer, which can run while libtorch still reads it (TorchSharp PR #1434), so hot paths hold their Scalars in fields or locals.
    private readonly TorchSharp.Scalar _eps;

    public RmsNorm(LazyWeight weight, double eps)
    {
        _weight = weight;
        _eps = eps.ToScalar();
    }

    public Tensor Forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = input.to(ScalarType.Float32);
        var variance = x.mul(x).mean([-1L], keepdim: true);
        var normalized = x.mul(variance.add(_eps).rsqrt()).to(input.dtype);
        return _weight.Value.mul(normalized).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        _weight.Dispose();
        _eps.Dispose();
    }
}
