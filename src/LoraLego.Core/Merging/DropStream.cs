using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// <see cref="RandomDrop"/> for one task applied block by block, with the draws the whole-tensor drop would make: the
/// dense path draws every entry of task 0, then of task 1, ... from one engine, so each task's stream starts where
/// the previous task's draws end, and is resumed block after block.
/// </summary>
internal sealed class DropStream
{
    private readonly double density;
    private readonly Mt19937 random;

    private DropStream(double density, Mt19937 random)
    {
        this.density = density;
        this.random = random;
    }

    /// <summary>
    /// One stream per task (each rows x cols of <paramref name="dtype"/>), each from its own copy of the engine moved
    /// past the earlier tasks' draws: the skip costs only the engine's regeneration, never a mask.
    /// </summary>
    public static IReadOnlyList<DropStream> For(IReadOnlyList<double> densities, long rows, long cols, ScalarType dtype, Mt19937 random)
    {
        var streams = new List<DropStream>(densities.Count);
        foreach (double density in densities)
        {
            streams.Add(new DropStream(density, random.Clone()));
            if (density < 1)
                TorchBernoulli.Skip(random, dtype, rows * cols);
        }
        return streams;
    }

    /// <summary>Whether the task drops anything: at density 1 it keeps every entry and draws nothing.</summary>
    public bool Drops => density < 1;

    /// <summary>The float32 the survivors are divided by, as the tensor drop divides them.</summary>
    public float Divisor => (float)density;

    /// <summary>
    /// The outcomes of the task's next <paramref name="count"/> float32 entries as bits (<see cref="TorchBernoulli.DrawBits"/>),
    /// for the fused combination, which applies them to entries it computes in registers.
    /// </summary>
    public void DrawBits(int count, Span<byte> bits) => TorchBernoulli.DrawBits(random, density, ScalarType.Float32, count, bits);

    /// <summary>
    /// The next block of the task, dropped and rescaled; blocks must come in row-major order, each once. A contiguous
    /// float32 block on the CPU is dropped in place (the caller's block is a product made for this drop).
    /// </summary>
    public Tensor Apply(Tensor block)
    {
        if (block.device_type != DeviceType.CPU || block.dtype != ScalarType.Float32 || !block.is_contiguous())
            return RandomDrop.Apply(block, density, random);
        RandomDrop.ApplyInPlace(MemoryMarshal.Cast<byte, float>(block.bytes), density, random);
        return block;
    }
}
