using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>
/// Rotary position embeddings in transformers' layout: the head dimensions split in two halves
/// that rotate together (rotate_half), not interleaved pairs.
/// </summary>
internal sealed class RotaryEmbedding : IDisposable
{
    private readonly Tensor _inverseFrequencies;

    public RotaryEmbedding(RopeSettings settings, int headDim, Device device)
    {
        var inverse = settings.InverseFrequencies(headDim).Select(f => (float)f).ToArray();
        _inverseFrequencies = tensor(inverse, device: device);
        _inverseFrequencies.DetachFromDisposeScope();
    }

    /// <summary>cos and sin for positions 0..length-1, [length, head_dim], angles computed in float32.</summary>
    public (Tensor Cos, Tensor Sin) Angles(long length, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var positions = arange(length, ScalarType.Float32, _inverseFrequencies.device);
        var frequencies = outer(positions, _inverseFrequencies);
        var angles = cat([frequencies, frequencies], -1);
        return (angles.cos().to(dtype).MoveToOuterDisposeScope(), angles.sin().to(dtype).MoveToOuterDisposeScope());
    }

    /// <summary>Rotates x [batch, heads, seq, head_dim] by the angles of its positions.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        long half = x.shape[^1] / 2;
        var rotated = cat([x[.., .., .., (int)half..].neg(), x[.., .., .., ..(int)half]], -1);
        return x.mul(cos).add_(rotated.mul(sin)).MoveToOuterDisposeScope();
    }

    public void Dispose() => _inverseFrequencies.Dispose();
}
