using LoraLego.Core.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Core.Adapters;

/// <summary>
/// A handle on one LoRA factor. File-backed handles copy their bytes out of the memory map
/// only when loaded, so listing or printing adapters never reads weights.
/// </summary>
public sealed class LoraTensor
{
    private readonly SafetensorsFile? _file;
    private readonly Tensor? _value;
    private readonly Func<Tensor>? _produce;

    private LoraTensor(string name, SafetensorsDType dtype, long[] shape, SafetensorsFile? file, Tensor? value, Func<Tensor>? produce = null)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        _file = file;
        _value = value;
        _produce = produce;
    }

    public string Name { get; }

    public SafetensorsDType DType { get; }

    public long[] Shape { get; }

    /// <summary>The file the bytes come from, or null for a tensor computed in memory.</summary>
    public string? SourcePath => _file?.Path;

    /// <summary>The opened file the bytes come from, or null for a tensor computed in memory.</summary>
    internal SafetensorsFile? SourceFile => _file;

    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <param name="shape">The shape to present the tensor in (a convolution factor flattened to a matrix); null keeps the file's.</param>
    public static LoraTensor FromFile(SafetensorsFile file, SafetensorsEntry entry, long[]? shape = null) =>
        new(entry.Name, entry.DType, shape ?? entry.Shape, file, null);

    /// <summary>Wraps a computed tensor; the handle keeps its own detached CPU copy.</summary>
    public static LoraTensor FromTensor(string name, Tensor value)
    {
        // The intermediates are freed here, not left to the finalizer: the GC does not see native
        // memory, so a merge of hundreds of modules would otherwise hold many copies at once.
        Tensor kept;
        using (NewDisposeScope())
        {
            kept = value.detach().cpu().contiguous().clone();
            kept.DetachFromDisposeScope();
        }
        return new LoraTensor(name, SafetensorsDTypes.FromScalarType(kept.dtype), kept.shape, null, kept);
    }

    /// <summary>Keeps <paramref name="value"/> itself, a contiguous CPU tensor that nothing else holds or changes, rather than a copy.</summary>
    internal static LoraTensor Adopt(string name, Tensor value)
    {
        value.DetachFromDisposeScope();
        return new LoraTensor(name, SafetensorsDTypes.FromScalarType(value.dtype), value.shape, null, value);
    }

    /// <summary>
    /// A tensor computed each time it is loaded, from inputs that stay in their files: a merge whose result is
    /// as large as its inputs (Cat) then streams from the inputs to the export instead of holding its output.
    /// </summary>
    /// <param name="produce">Returns a new CPU tensor of <paramref name="dtype"/> and <paramref name="shape"/>, owned by the caller.</param>
    public static LoraTensor Deferred(string name, SafetensorsDType dtype, long[] shape, Func<Tensor> produce) =>
        new(name, dtype, shape, null, null, produce);

    /// <summary>A new CPU tensor in the stored dtype; the caller owns it.</summary>
    /// <exception cref="LoraException">A tensor read from a file holds a NaN or an infinity (<see cref="FiniteCheck"/>).</exception>
    public Tensor Load()
    {
        if (_value is not null)
            return _value.clone();
        if (_produce is not null)
            return _produce();
        var read = _file!.ReadTensor(Name);
        try
        {
            FiniteCheck.Require(read, _file.Path, Name);
            if (read.shape.SequenceEqual(Shape))
                return read;
            using (read)
                return read.reshape(Shape);
        }
        catch
        {
            read.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The values to read, not to change, in the stored dtype; the caller disposes the tensor. An in-memory value is
    /// shared rather than copied: an export writes each merged factor once, and a copy of it cost as much as the write.
    /// </summary>
    internal Tensor LoadShared() => _value?.alias() ?? Load();

    /// <summary>
    /// The stored bytes (<see cref="DType"/>, row-major) of <paramref name="factors"/>, one after the other, copied
    /// into <paramref name="destination"/> and checked as <see cref="Load"/> checks them, without a tensor: a span loop
    /// reading many factors reuses one buffer. Factors of one file are read together, so the factors a file stores
    /// one after the other (a module's A and B) take one read.
    /// </summary>
    internal static void CopyStored(IReadOnlyList<LoraTensor> factors, Span<byte> destination)
    {
        if (factors[0]._file is { } file && factors.All(f => f._file == file))
            file.ReadBytes(factors.Select(f => f.Name).ToList(), destination);
        else
        {
            var rest = destination;
            foreach (var factor in factors)
            {
                factor.CopyStored(rest);
                rest = rest[checked((int)factor.ByteLength)..];
            }
        }
        foreach (var factor in factors)
        {
            int length = checked((int)factor.ByteLength);
            // A non-finite value is rare: Load reads the tensor again to throw its error, naming the file and the first such value.
            if (factor._file is not null && FiniteCheck.AllFinite(destination[..length], factor.DType.ToScalarType()) == false)
                factor.Load().Dispose();
            destination = destination[length..];
        }
    }

    /// <summary>The size of the stored values in bytes.</summary>
    internal long ByteLength => ElementCount * DType.ElementSize();

    private void CopyStored(Span<byte> destination)
    {
        if (_file is not null)
        {
            _file.ReadBytes([Name], destination);
            return;
        }
        using var value = Load();
        using var contiguous = value.contiguous();
        contiguous.bytes.CopyTo(destination);
    }

    /// <summary>A new float32 tensor on <paramref name="device"/> (CPU when null); the caller owns it.</summary>
    public Tensor LoadFloat32(Device? device = null)
    {
        using var raw = Load();
        return raw.to(ScalarType.Float32, device ?? CPU);
    }

    /// <summary>The values as float32, row-major, for scripted checks.</summary>
    public float[] ToArray()
    {
        using var t = LoadFloat32();
        return TensorBytes.ToArray<float>(t);
    }

    public override string ToString() => $"{DType}[{string.Join("x", Shape)}]";
}
