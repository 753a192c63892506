using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using static TorchSharp.torch;

namespace LoraLego.Core.Clustering;

/// <summary>
/// One module's sign-canonical units in their value order, each kept as its unscaled float32 row [b; a] (n x width,
/// row-major; exact for every dtype but F64) and the two float64 factors that fold it (<see cref="BFactors"/> on the
/// first <c>outFeatures</c> values, <see cref="AFactors"/> on the rest), so the folded float64 vectors are
/// formed only where they are read. On the CPU the rows stay in a buffer a merge reuses module after module (a fresh
/// libtorch tensor per module faulted in some 2 GB of new pages per 7B merge), their Gram products shared among
/// <c>gramThreads</c> threads; on another device the folded rows are a tensor moved there, whose matmuls then form
/// the Gram matrices and the centroids.
/// </summary>
internal sealed class MemberRows(float[] buffer, int count, int width, int outFeatures, double[] bFactors, double[] aFactors, int gramThreads)
{
    public int Count => count;

    public int Width => width;

    /// <summary>The unscaled rows on the CPU.</summary>
    public ReadOnlySpan<float> Values => buffer.AsSpan(0, count * width);

    /// <summary>Each row's factor on its b part (sign included).</summary>
    public ReadOnlySpan<double> BFactors => bFactors;

    /// <summary>Each row's factor on its a part (sign included).</summary>
    public ReadOnlySpan<double> AFactors => aFactors;

    /// <summary>The folded rows on the clustering device, or null when it is the CPU.</summary>
    public Tensor? OnDevice { get; private set; }

    /// <summary>
    /// The folded rows on <paramref name="device"/>: the float32 rows are copied there (half the bytes of folded ones) through
    /// <paramref name="staging"/> (page-locked CPU memory of at least n x width values) and folded there, widened and multiplied
    /// by their factors in float64, the same single rounding as <see cref="ToTensor"/>. The tensors belong to the caller's
    /// dispose scope.
    /// </summary>
    public void MoveTo(Device device, Tensor staging)
    {
        var rows = staging.narrow(0, 0, (long)count * width);
        Values.CopyTo(MemoryMarshal.Cast<byte, float>(rows.bytes));
        var folded = rows.view(count, width).to(device).to_type(ScalarType.Float64);
        folded.narrow(1, 0, outFeatures).mul_(tensor(bFactors, [count, 1], device: device));
        folded.narrow(1, outFeatures, width - outFeatures).mul_(tensor(aFactors, [count, 1], device: device));
        OnDevice = folded;
    }

    /// <summary>The folded rows as a new float64 CPU tensor, in the caller's dispose scope.</summary>
    public Tensor ToTensor()
    {
        var rows = empty([count, width], ScalarType.Float64);
        var folded = MemoryMarshal.Cast<byte, double>(rows.bytes);
        for (int i = 0; i < count; i++)
            Fold(i, folded.Slice(i * width, width));
        return rows;
    }

    // Row i folded: each value widened and multiplied by its part's factor in float64, one rounding.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Fold(int i, Span<double> destination)
    {
        var row = Values.Slice(i * width, width);
        Scale(row[..outFeatures], bFactors[i], destination[..outFeatures]);
        Scale(row[outFeatures..], aFactors[i], destination[outFeatures..]);
    }

    private static void Scale(ReadOnlySpan<float> source, double factor, Span<double> destination)
    {
        int c = 0;
        var f = Vector256.Create(factor);
        for (; c + 8 <= source.Length; c += 8)
        {
            var (low, high) = Vector256.Widen(Vector256.Create(source.Slice(c, 8)));
            (low * f).CopyTo(destination.Slice(c, 4));
            (high * f).CopyTo(destination.Slice(c + 4, 4));
        }
        for (; c < source.Length; c++)
            destination[c] = source[c] * factor;
    }

    /// <summary>
    /// The Gram matrix of the folded b parts (<paramref name="bPart"/>) or a parts, n x n row-major: on the CPU that
    /// of the unscaled float32 rows (<see cref="SymmetricGram"/>) times the two rows' factors.
    /// </summary>
    public double[] PartGram(bool bPart)
    {
        int first = bPart ? 0 : outFeatures, columns = bPart ? outFeatures : width - outFeatures;
        if (OnDevice is { } rows)
            return KMeans.GramOf(rows, first, columns);
        var gram = SymmetricGram.Of(Values, count, width, first, columns, gramThreads);
        var factors = bPart ? bFactors : aFactors;
        for (int i = 0; i < count; i++)
            for (int j = 0; j < count; j++)
                gram[i * count + j] *= factors[i] * factors[j];
        return gram;
    }
}
