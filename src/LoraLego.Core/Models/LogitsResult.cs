using LoraLego.Core.Formats;
using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>Logits copied to managed memory, [batch, seq, vocab] float32, for scripts and checks.</summary>
public sealed class LogitsResult
{
    private readonly float[] _values;

    private LogitsResult(int[] shape, float[] values)
    {
        Shape = shape;
        _values = values;
    }

    /// <summary>[batch, seq, vocab].</summary>
    public int[] Shape { get; }

    public int BatchSize => Shape[0];

    public int SequenceLength => Shape[1];

    public int VocabSize => Shape[2];

    public float this[int row, int position, int token] => _values[((long)row * Shape[1] + position) * Shape[2] + token];

    /// <summary>Copies a float32 logits tensor (any device) out of TorchSharp.</summary>
    public static LogitsResult FromTensor(Tensor logits)
    {
        using var cpu = logits.to(ScalarType.Float32, CPU).contiguous();
        return new LogitsResult(cpu.shape.Select(d => checked((int)d)).ToArray(), TensorBytes.ToArray<float>(cpu));
    }

    /// <summary>A copy of the values, row-major.</summary>
    public float[] ToArray() => (float[])_values.Clone();

    public override string ToString() => $"Logits[{string.Join("x", Shape)}]";
}
