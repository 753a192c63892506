using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LoraLego.Core.Adapters;
using LoraLego.Core.Compute;
using LoraLego.Core.Formats;
using static TorchSharp.torch;

namespace LoraLego.Core.Units;

/// <summary>
/// The units of one module of one adapter, kept as the module's two factors: a merge clusters the
/// whole module as tensors, and each unit's own arrays are cut out only when something asks for them.
/// </summary>
internal sealed class ModuleUnits
{
    public ModuleUnits(LoraAdapter adapter, LoraModule module, double weight)
    {
        Module = module;
        Scaling = module.Scaling * weight;
        int rank = module.Rank, inFeatures = (int)module.InFeatures, outFeatures = (int)module.OutFeatures;
        var factors = new Lazy<(float[] A, float[] B)>(() => (module.A.ToArray(), module.B.ToArray()));
        Units = Enumerable.Range(0, rank)
            .Select(i => new Msu(adapter.Name, module.Key, i, inFeatures, outFeatures,
                new Lazy<(float[], float[])>(() => Unit(factors.Value.A, factors.Value.B, i, rank, inFeatures, outFeatures)),
                Scaling, rank, module.FanInFanOut, signFlipped: false) { AdapterConfig = adapter.Config, Kernel = module.Kernel })
            .ToList();
    }

    public LoraModule Module { get; }

    /// <summary>The module's LoRA scaling times the adapter's weight, shared by its units.</summary>
    public double Scaling { get; }

    public IReadOnlyList<Msu> Units { get; }

    /// <summary>Reads the units' arrays now, so that a bad file fails here, naming it, and not wherever a unit is first looked at.</summary>
    public ModuleUnits Read()
    {
        foreach (var unit in Units)
            _ = unit.A;
        return this;
    }

    /// <summary>
    /// The units as rows [B^T, A] (rank x (out + in)) in the stored dtype on the CPU, read from
    /// the file in one piece per factor; the caller owns the tensor.
    /// </summary>
    public Tensor Rows()
    {
        using var scope = NewDisposeScope();
        var a = Module.A.Load();
        var b = Module.B.Load();
        return cat([b.t(), a], 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The rows of <see cref="Rows"/> as float32 into <paramref name="rows"/> (rank rows of <paramref name="width"/> =
    /// out + in values; exact for F16, BF16 and F32, as the units' own float32 arrays are), the stored bytes read into
    /// pooled buffers and widened there, so that a merge reading module after module touches no fresh memory. Dtypes
    /// <see cref="FloatLanes"/> does not read go through <see cref="Rows"/> and libtorch's conversion.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void WidenRows(Span<float> rows, int width)
    {
        LoraTensor a = Module.A, b = Module.B;
        int rank = Module.Rank, inFeatures = (int)Module.InFeatures, outFeatures = (int)Module.OutFeatures;
        if (!FloatLanes.Covers(a.DType) || !FloatLanes.Covers(b.DType))
        {
            using var stored = Rows();
            using var single = stored.to_type(ScalarType.Float32).contiguous();
            MemoryMarshal.Cast<byte, float>(single.bytes).CopyTo(rows);
            return;
        }
        long aBytes = a.ByteLength, bBytes = b.ByteLength;
        var bytes = ArrayPool<byte>.Shared.Rent(checked((int)(aBytes + bBytes)));
        var column = ArrayPool<float>.Shared.Rent(outFeatures * rank);
        try
        {
            int size = a.DType.ElementSize();
            LoraTensor.CopyStored([a, b], bytes);
            for (int r = 0; r < rank; r++)
                FloatLanes.Widen(bytes.AsSpan(r * inFeatures * size, inFeatures * size), a.DType, rows.Slice(r * width + outFeatures, inFeatures));
            var wideB = column.AsSpan(0, outFeatures * rank);
            FloatLanes.Widen(bytes.AsSpan((int)aBytes, (int)bBytes), b.DType, wideB);
            // Column r of B is row r's first out values.
            FloatTranspose.Transpose(wideB, outFeatures, rank, rows, width);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(column);
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    // Row i of A and column i of B.
    private static (float[] A, float[] B) Unit(float[] a, float[] b, int i, int rank, int inFeatures, int outFeatures)
    {
        var row = a.AsSpan(i * inFeatures, inFeatures).ToArray();
        var column = new float[outFeatures];
        for (int o = 0; o < outFeatures; o++)
            column[o] = b[o * rank + i];
        return (row, column);
    }
}
