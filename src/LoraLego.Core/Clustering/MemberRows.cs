using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace LoraLego.Core.Clustering;

/// <summary>
/// One module's folded, sign-canonical units as float64 rows (n x width, row-major), clustered where the
/// clustering runs: on the CPU straight from a buffer a merge reuses module after module (a fresh
/// libtorch tensor per module faulted in some 2 GB of new pages per 7B merge), its Gram products shared among
/// <c>gramThreads</c> threads; on another device as
/// a tensor moved there, whose matmuls then form the Gram matrices and the centroids.
/// </summary>
internal sealed class MemberRows(double[] buffer, int count, int width, int gramThreads)
{
    public int Count => count;

    public int Width => width;

    /// <summary>The rows on the CPU (also where <see cref="OnDevice"/> was copied from).</summary>
    public Span<double> Values => buffer.AsSpan(0, count * width);

    /// <summary>The rows on the clustering device, or null when it is the CPU.</summary>
    public Tensor? OnDevice { get; private set; }

    /// <summary>Copies the rows to <paramref name="device"/>; the tensor belongs to the caller's dispose scope.</summary>
    public void MoveTo(Device device) => OnDevice = ToTensor().to(device);

    /// <summary>The rows as a new CPU tensor, in the caller's dispose scope.</summary>
    public Tensor ToTensor()
    {
        var rows = empty([count, width], ScalarType.Float64);
        Values.CopyTo(MemoryMarshal.Cast<byte, double>(rows.bytes));
        return rows;
    }

    /// <summary>X X^T of columns [<paramref name="first"/>, first + <paramref name="columns"/>), n x n row-major (<see cref="KMeans.GramOf"/>).</summary>
    public double[] Gram(int first = 0, int? columns = null) =>
        OnDevice is { } rows
            ? KMeans.GramOf(rows, first, columns)
            : SymmetricGram.Of(Values, count, width, first, columns ?? width - first, gramThreads);
}
