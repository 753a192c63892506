using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;
using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>DARE's drop step: keep each entry with probability density and divide the survivors by density.</summary>
internal static class RandomDrop
{
    /// <summary>The rescale keeps the expected value of every entry unchanged; density 1 keeps everything.</summary>
    public static Tensor Apply(Tensor task, double density, Mt19937 random)
    {
        if (density >= 1)
            return task.clone();
        using var scope = NewDisposeScope();
        return task.mul(Keep(task, density, random)).div_(density).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="Apply"/> on float32 entries in memory, overwriting them, with the same operations entry by entry (the
    /// product with the 0/1 outcome, then the quotient by density as a float32), so with the same bits, and no mask
    /// tensor: the row blocks of the CPU's tiled combination are dropped this way.
    /// </summary>
    internal static void ApplyInPlace(Span<float> task, double density, Mt19937 random)
    {
        if (density >= 1)
            return;
        Span<float> keep = stackalloc float[1024];
        var divisor = new Vector<float>((float)density);
        int width = Vector<float>.Count;
        while (!task.IsEmpty)
        {
            var chunk = task[..Math.Min(keep.Length, task.Length)];
            var outcomes = keep[..chunk.Length];
            TorchBernoulli.Draw(random, density, ScalarType.Float32, outcomes);
            int i = 0;
            for (; i + width <= chunk.Length; i += width)
                (new Vector<float>(chunk[i..]) * new Vector<float>(outcomes[i..]) / divisor).CopyTo(chunk[i..]);
            for (; i < chunk.Length; i++)
                chunk[i] = chunk[i] * outcomes[i] / (float)density;
            task = task[chunk.Length..];
        }
    }

    /// <summary>
    /// Where <paramref name="task"/>'s entries survive (1, else 0, in its dtype): torch.bernoulli of a tensor of
    /// density in that dtype, one draw per entry in row-major order, so drawing a tensor's rows block by block from
    /// one engine gives the mask drawn for the whole tensor.
    /// </summary>
    internal static Tensor Keep(Tensor task, double density, Mt19937 random)
    {
        // Drawn on the CPU whatever the task's device: one stream for every device makes a seed give the same merge
        // on the CPU and on CUDA (torch's generators for these draws were CPU generators).
        if (task.dtype == ScalarType.Float64)
        {
            var mask = empty(task.shape, ScalarType.Float32, CPU);
            TorchBernoulli.Draw(random, density, task.dtype, MemoryMarshal.Cast<byte, float>(mask.bytes));
            return mask.to(task.dtype).to(task.device);
        }
        // One bit per entry crosses to the device and is unpacked there: a float32 mask written on the CPU and
        // copied over took 32 times the bytes, and made DARE's _svd forms on CUDA slower than on the CPU.
        int count = checked((int)task.numel());
        using var scope = NewDisposeScope();
        var packed = empty((count + 7) / 8, ScalarType.Byte, CPU);
        TorchBernoulli.DrawBits(random, density, task.dtype, count, packed.bytes);
        var shifts = arange(8, ScalarType.Byte, task.device);
        var outcomes = packed.to(task.device).unsqueeze(1).bitwise_right_shift(shifts).bitwise_and(1).flatten();
        return outcomes.narrow(0, 0, count).reshape(task.shape).to(task.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A generator for one module, seeded from the merge's seed and the module's key, so a module's drops do not
    /// depend on which other modules the adapters have or in what order they are merged.
    /// </summary>
    public static Mt19937 ForModule(long seed, string moduleKey)
    {
        // FNV-1a: string.GetHashCode is randomised per process and would break reproducibility.
        ulong hash = 14695981039346656037UL;
        foreach (byte b in Encoding.UTF8.GetBytes(moduleKey))
            hash = (hash ^ b) * 1099511628211UL;
        ulong mixed = hash ^ ((ulong)seed * 0x9E3779B97F4A7C15UL);
        return new Mt19937(mixed & long.MaxValue);
    }
}
