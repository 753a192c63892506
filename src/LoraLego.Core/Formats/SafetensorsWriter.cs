using System.Buffers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace LoraLego.Core.Formats;

/// <summary>A tensor to be written: its bytes are produced only when the writer reaches it.</summary>
public sealed record SafetensorsWriteItem(string Name, SafetensorsDType DType, long[] Shape, Func<Tensor> Produce);

/// <summary>
/// Streams tensors into a safetensors file. The header is computed from names, dtypes and
/// shapes alone, so each tensor is produced, written and released in turn: peak memory is one
/// tensor, whatever the file's size.
/// </summary>
public static class SafetensorsWriter
{
    /// <param name="cancellationToken">Checked between tensors; a cancelled write throws and, through
    /// <see cref="AtomicFile"/>, leaves no file behind.</param>
    public static void Write(Stream stream, IReadOnlyList<SafetensorsWriteItem> items, IReadOnlyDictionary<string, string>? metadata = null,
        CancellationToken cancellationToken = default)
    {
        var header = BuildHeader(items, metadata);
        stream.Write(BitConverter.GetBytes((ulong)header.Length));
        stream.Write(header);
        foreach (var item in items)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var produced = item.Produce();
            if (!produced.shape.SequenceEqual(item.Shape))
                throw new LoraException(LoraErrorKind.ShapeMismatch, item.Name, $"produced shape [{string.Join(", ", produced.shape)}] but the header says [{string.Join(", ", item.Shape)}]");
            if (Narrows(produced, item.DType))
                WriteNarrowed(produced, item, stream);
            else
                WriteConverted(produced, item, stream);
        }
    }

    private static void WriteConverted(Tensor produced, SafetensorsWriteItem item, Stream stream)
    {
        using var typed = produced.to_type(item.DType.ToScalarType());
        FiniteCheck.Require(typed, null, item.Name, typed.dtype == produced.dtype ? null : $"once converted to {item.DType}");
        TensorBytes.WriteTo(typed, stream);
    }

    // float32 on the CPU written as F16 or BF16 (a merge's float32 result exported in its inputs' dtype) is rounded in
    // span loops chunk by chunk into one buffer: libtorch's conversion made a new tensor per written tensor, whose
    // fresh pages and calls cost a Lego export more than its write.
    private static bool Narrows(Tensor produced, SafetensorsDType dtype) =>
        dtype is SafetensorsDType.F16 or SafetensorsDType.BF16 && produced.dtype == ScalarType.Float32
        && produced.device_type == TorchSharp.DeviceType.CPU && produced.is_contiguous() && produced.numel() <= int.MaxValue / sizeof(float);

    private const int ChunkValues = 1 << 18;

    private static void WriteNarrowed(Tensor produced, SafetensorsWriteItem item, Stream stream)
    {
        var values = MemoryMarshal.Cast<byte, float>(produced.bytes);
        int size = item.DType.ElementSize();
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(values.Length, ChunkValues) * size);
        try
        {
            for (int at = 0; at < values.Length; at += ChunkValues)
            {
                var chunk = values.Slice(at, Math.Min(ChunkValues, values.Length - at));
                var narrowed = buffer.AsSpan(0, chunk.Length * size);
                FloatLanes.Narrow(chunk, item.DType, narrowed);
                // A value that is not finite once rounded: libtorch's conversion finds it again, for the error's counts and place.
                if (FiniteCheck.AllFinite(narrowed, item.DType.ToScalarType()) == false)
                    WriteConverted(produced, item, Stream.Null);
                stream.Write(narrowed);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Writes the file through a temporary file renamed into place.</summary>
    public static void Write(string path, IReadOnlyList<SafetensorsWriteItem> items, IReadOnlyDictionary<string, string>? metadata = null,
        CancellationToken cancellationToken = default) =>
        AtomicFile.Write(path, stream => Write(stream, items, metadata, cancellationToken));

    private static byte[] BuildHeader(IReadOnlyList<SafetensorsWriteItem> items, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata)
                    json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var item in items)
            {
                if (!seen.Add(item.Name))
                    throw new LoraException(LoraErrorKind.InvalidArgument, item.Name, "tensor name written twice");
                long bytes = item.Shape.Aggregate(1L, (a, b) => a * b) * item.DType.ElementSize();
                json.WriteStartObject(item.Name);
                json.WriteString("dtype", item.DType.ToString());
                json.WriteStartArray("shape");
                foreach (var d in item.Shape)
                    json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        // The data section starts 8-aligned, as the reference implementation pads with spaces.
        int pad = (int)((8 - buffer.Length % 8) % 8);
        for (int i = 0; i < pad; i++)
            buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }
}
