using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoraLego.Core.Compute;

/// <summary>
/// Transposes a row-major float32 matrix into rows of any stride, 8 x 8 blocks at a time in AVX registers (eight
/// loads and eight stores per block where element-wise copying makes 64 strided ones); the edges element by element.
/// </summary>
internal static class FloatTranspose
{
    /// <summary>
    /// <paramref name="source"/> (<paramref name="rows"/> x <paramref name="columns"/>, row-major) transposed: its
    /// column c becomes the first <paramref name="rows"/> values of <paramref name="destination"/>'s row c, rows
    /// <paramref name="stride"/> apart.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Transpose(ReadOnlySpan<float> source, int rows, int columns, Span<float> destination, int stride)
    {
        if ((long)rows * columns > source.Length || (columns > 0 && (long)(columns - 1) * stride + rows > destination.Length))
            throw new ArgumentOutOfRangeException(nameof(destination), "the matrix does not fit the spans");
        int blockRows = Avx.IsSupported ? rows / 8 * 8 : 0, blockColumns = Avx.IsSupported ? columns / 8 * 8 : 0;
        fixed (float* from = source, to = destination)
            for (int r = 0; r < blockRows; r += 8)
                for (int c = 0; c < blockColumns; c += 8)
                    Block(from + (long)r * columns + c, columns, to + (long)c * stride + r, stride);
        for (int r = 0; r < rows; r++)
            for (int c = r < blockRows ? blockColumns : 0; c < columns; c++)
                destination[c * stride + r] = source[r * columns + c];
    }

    // The 8 x 8 block at `from` (rows `width` apart) written transposed at `to` (rows `stride` apart).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Block(float* from, int width, float* to, int stride)
    {
        var (c0, c1, c2, c3, c4, c5, c6, c7) = Transposed(Vector256.Load(from), Vector256.Load(from + width), Vector256.Load(from + 2 * width),
            Vector256.Load(from + 3 * width), Vector256.Load(from + 4 * width), Vector256.Load(from + 5 * width), Vector256.Load(from + 6 * width),
            Vector256.Load(from + 7 * width));
        c0.Store(to);
        c1.Store(to + stride);
        c2.Store(to + 2 * stride);
        c3.Store(to + 3 * stride);
        c4.Store(to + 4 * stride);
        c5.Store(to + 5 * stride);
        c6.Store(to + 6 * stride);
        c7.Store(to + 7 * stride);
    }

    /// <summary>The 8 x 8 block whose rows are <paramref name="r0"/> to <paramref name="r7"/>, transposed: vector j holds the rows' j-th values (AVX).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>,
        Vector256<float>) Transposed(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2, Vector256<float> r3, Vector256<float> r4,
        Vector256<float> r5, Vector256<float> r6, Vector256<float> r7)
    {
        var t0 = Avx.UnpackLow(r0, r1);
        var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3);
        var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5);
        var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7);
        var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44);
        var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44);
        var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44);
        var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44);
        var u7 = Avx.Shuffle(t5, t7, 0xEE);
        return (Avx.Permute2x128(u0, u4, 0x20), Avx.Permute2x128(u1, u5, 0x20), Avx.Permute2x128(u2, u6, 0x20), Avx.Permute2x128(u3, u7, 0x20),
            Avx.Permute2x128(u0, u4, 0x31), Avx.Permute2x128(u1, u5, 0x31), Avx.Permute2x128(u2, u6, 0x31), Avx.Permute2x128(u3, u7, 0x31));
    }
}
