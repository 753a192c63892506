using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>The gated feed-forward block of Llama-family models: down(silu(gate(x)) * up(x)).</summary>
internal sealed class SwiGluMlp : IDisposable
{
    public SwiGluMlp(AdaptedLinear gate, AdaptedLinear up, AdaptedLinear down)
    {
        Gate = gate;
        Up = up;
        Down = down;
    }

    public AdaptedLinear Gate { get; }

    public AdaptedLinear Up { get; }

    public AdaptedLinear Down { get; }

    public Tensor Forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var gated = nn.functional.silu(Gate.Forward(hidden)).mul_(Up.Forward(hidden));
        return Down.Forward(gated).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Gate.Dispose();
        Up.Dispose();
        Down.Dispose();
    }
}
