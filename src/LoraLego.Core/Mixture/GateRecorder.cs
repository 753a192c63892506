using static TorchSharp.torch;

namespace LoraLego.Core.Mixture;

/// <summary>
/// Collects the gate values of forward passes while switched on: the balance loss needs them
/// with their gradients, the gate meter without. The recorder owns what it holds.
/// </summary>
internal sealed class GateRecorder : IDisposable
{
    private readonly List<(MixtureGate Gate, Tensor Values)> _values = [];

    public bool IsOn { get; set; }

    /// <summary>Per gate value tensor recorded since the last <see cref="Clear"/>, [batch, seq, experts] each.</summary>
    public IReadOnlyList<(MixtureGate Gate, Tensor Values)> Values => _values;

    public void Record(MixtureGate gate, Tensor values)
    {
        if (!IsOn)
            return;
        var kept = values.alias();
        kept.DetachFromDisposeScope();
        _values.Add((gate, kept));
    }

    public void Clear()
    {
        foreach (var (_, values) in _values)
            values.Dispose();
        _values.Clear();
    }

    public void Dispose() => Clear();
}
