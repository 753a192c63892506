using LoraLego.Core.Compute;

namespace LoraLego.Core.Tests.Kernels;

public class FloatTransposeTests
{
    // Shapes with and without whole 8 x 8 blocks on either side, into rows wider than the matrix (the rest untouched).
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(8, 8, 8)]
    [InlineData(16, 8, 20)]
    [InlineData(11008, 16, 11008)]
    [InlineData(13, 29, 40)]
    [InlineData(24, 7, 31)]
    public void Column_c_becomes_row_c_of_the_destination(int rows, int columns, int stride)
    {
        var source = Enumerable.Range(0, rows * columns).Select(i => (float)i).ToArray();
        var destination = Enumerable.Repeat(-1f, (columns - 1) * stride + rows + 3).ToArray();
        FloatTranspose.Transpose(source, rows, columns, destination, stride);
        for (int c = 0; c < columns; c++)
            for (int p = 0; p < stride && c * stride + p < destination.Length; p++)
                Assert.Equal(p < rows ? source[p * columns + c] : -1f, destination[c * stride + p]);
    }

    [Fact]
    public void A_destination_too_short_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => FloatTranspose.Transpose(new float[16], 4, 4, new float[15], 4));
    }
}
