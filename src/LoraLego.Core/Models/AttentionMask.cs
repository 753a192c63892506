using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>The additive attention mask of a decoder: causal, optionally limited to a sliding window.</summary>
internal static class AttentionMask
{
    /// <returns>[length, length]: 0 where query i may attend to key j, -inf elsewhere.</returns>
    public static Tensor Causal(long length, int? slidingWindow, ScalarType dtype, Device device)
    {
        using var scope = NewDisposeScope();
        using var minusInfinity = double.NegativeInfinity.ToScalar();
        var query = arange(length, ScalarType.Int64, device).unsqueeze(1);
        var key = arange(length, ScalarType.Int64, device).unsqueeze(0);
        var blocked = key.gt(query);
        if (slidingWindow is int window)
        {
            using var windowScalar = window.ToScalar();
            blocked = blocked.logical_or(query.sub(key).ge(windowScalar));
        }
        return zeros([length, length], dtype, device).masked_fill(blocked, minusInfinity).MoveToOuterDisposeScope();
    }
}
