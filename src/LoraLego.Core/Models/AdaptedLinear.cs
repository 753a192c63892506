using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>
/// A linear layer of the base model (its weight stored out x in, as nn.Linear does) that
/// adapters can change in two ways: merged into the weight, or as an
/// <see cref="ILoraContribution"/> added to the output.
/// </summary>
public sealed class AdaptedLinear : IDisposable
{
    private readonly LazyWeight _weight;
    private readonly LazyWeight? _bias;

    // The weight as loaded, kept while merged adapters replace it, so detaching restores it
    // bit for bit without rereading the file or subtracting.
    private Tensor? _baseWeight;

    internal AdaptedLinear(string key, LazyWeight weight, LazyWeight? bias, bool sharesWeight = false)
    {
        Key = key;
        _weight = weight;
        _bias = bias;
        SharesWeight = sharesWeight;
    }

    /// <summary>The module's path in the model, e.g. model.layers.0.self_attn.q_proj: the key LoRA modules name.</summary>
    public string Key { get; }

    public long OutFeatures => _weight.Shape[0];

    public long InFeatures => _weight.Shape[1];

    public bool HasBias => _bias is not null;

    /// <summary>True for an lm_head tied to the token embeddings: merging into it would change the embeddings too.</summary>
    public bool SharesWeight { get; }

    /// <summary>True while merged adapters have replaced the weight.</summary>
    public bool IsMerged => _baseWeight is not null;

    /// <summary>What adapters add to this layer's output, or null for the plain layer. See <see cref="ILoraContribution"/>.</summary>
    public ILoraContribution? Contribution { get; set; }

    /// <summary>[..., in_features] to [..., out_features].</summary>
    public Tensor Forward(Tensor input)
    {
        var output = nn.functional.linear(input, _weight.Value, _bias?.Value);
        if (Contribution is null)
            return output;
        using var low = Contribution.Forward(input);
        return output.add_(low);
    }

    /// <summary>
    /// Adds <paramref name="scale"/> * <paramref name="delta"/> (float32, out x in) to the weight.
    /// The caller refuses layers that <see cref="SharesWeight"/>.
    /// </summary>
    internal void Merge(Tensor delta, double scale)
    {
        using var scope = NewDisposeScope();
        var current = _weight.Value;
        // Summed in float32 so the update is not rounded to a half-precision dtype before it is added.
        var merged = current.to(ScalarType.Float32).add(delta, alpha: scale).to(current.dtype);
        merged.MoveToOuterDisposeScope();
        var replaced = _weight.Swap(merged);
        if (_baseWeight is null)
            _baseWeight = replaced;
        else
            replaced.Dispose();
    }

    /// <summary>Puts the weight as loaded back in place, undoing every merge.</summary>
    internal void RestoreBaseWeight()
    {
        if (_baseWeight is null)
            return;
        _weight.Swap(_baseWeight).Dispose();
        _baseWeight = null;
    }

    public void Dispose()
    {
        _baseWeight?.Dispose();
        _baseWeight = null;
        _weight.Dispose();
        _bias?.Dispose();
    }
}
