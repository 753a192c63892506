using Microsoft.Win32.SafeHandles;
using static TorchSharp.torch;

namespace LoraLego.Core.Formats;

/// <summary>
/// Raw byte access to contiguous CPU tensors. TorchSharp exposes a tensor's storage as a
/// Span, which caps at 2 GiB; large tensors (a 70B model's embeddings) go through in slices
/// along the first dimension, which stay contiguous.
/// </summary>
public static class TensorBytes
{
    private const long MaxSpan = int.MaxValue / 2;

    /// <summary>Reads <paramref name="byteLength"/> bytes of <paramref name="file"/> at <paramref name="offset"/> into a contiguous CPU tensor; false when the file ends first.</summary>
    public static bool ReadInto(Tensor tensor, SafeFileHandle file, long offset, long byteLength)
    {
        if (byteLength <= MaxSpan || tensor.dim() == 0)
            return ReadInto(tensor.bytes[..checked((int)byteLength)], file, offset);
        long rows = tensor.shape[0];
        long rowBytes = byteLength / rows;
        long rowsPerChunk = Math.Max(1, MaxSpan / rowBytes);
        for (long r = 0; r < rows; r += rowsPerChunk)
        {
            long n = Math.Min(rowsPerChunk, rows - r);
            using var slice = tensor.narrow(0, r, n);
            if (!ReadInto(slice, file, offset + r * rowBytes, n * rowBytes))
                return false;
        }
        return true;
    }

    /// <summary>Fills <paramref name="destination"/> from <paramref name="file"/> at <paramref name="offset"/>; false when the file ends first.</summary>
    public static bool ReadInto(Span<byte> destination, SafeFileHandle file, long offset)
    {
        while (!destination.IsEmpty)
        {
            int read = RandomAccess.Read(file, destination, offset);
            if (read == 0)
                return false;
            destination = destination[read..];
            offset += read;
        }
        return true;
    }

    /// <summary>
    /// The tensor's values, contiguous in CPU memory (a view of the tensor itself where they already are), for reading
    /// its <c>bytes</c> in place; the caller disposes it.
    /// </summary>
    public static Tensor ContiguousOnCpu(Tensor tensor)
    {
        using var cpu = tensor.device_type == TorchSharp.DeviceType.CPU ? tensor.alias() : tensor.cpu();
        return cpu.contiguous();
    }

    /// <summary>
    /// The values of a tensor of element type <typeparamref name="T"/> as a managed array, copied as one
    /// block: TorchSharp's data&lt;T&gt;().ToArray() goes element by element, which made splitting a 7B
    /// adapter into units take a minute.
    /// </summary>
    public static T[] ToArray<T>(Tensor tensor) where T : unmanaged
    {
        using var contiguous = ContiguousOnCpu(tensor);
        var result = new T[contiguous.numel()];
        if (result.Length > 0)
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(contiguous.bytes).CopyTo(result);
        return result;
    }

    /// <summary>Writes a tensor's bytes (made contiguous on the CPU) to a stream.</summary>
    public static void WriteTo(Tensor tensor, Stream stream)
    {
        using var contiguous = ContiguousOnCpu(tensor);
        long byteLength = contiguous.numel() * contiguous.element_size();
        if (byteLength <= MaxSpan || contiguous.dim() == 0)
        {
            stream.Write(contiguous.bytes);
            return;
        }
        long rows = contiguous.shape[0];
        long rowsPerChunk = Math.Max(1, MaxSpan / (byteLength / rows));
        for (long r = 0; r < rows; r += rowsPerChunk)
        {
            using var slice = contiguous.narrow(0, r, Math.Min(rowsPerChunk, rows - r));
            WriteTo(slice, stream);
        }
    }
}
