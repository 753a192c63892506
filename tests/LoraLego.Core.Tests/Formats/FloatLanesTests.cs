using System.Runtime.InteropServices;
using LoraLego.Core.Formats;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Formats;

/// <summary>The span conversions give libtorch's bytes: widening with the multiply and add, narrowing with its rounding.</summary>
public class FloatLanesTests
{
    // Random bit patterns cover every exponent; the scaled normals cover F16's subnormal, halfway and overflow cases.
    private static float[] Values(int seed)
    {
        var random = new Random(seed);
        var values = new float[100_003];
        for (int i = 0; i < values.Length; i++)
            values[i] = (i % 3) switch
            {
                0 => BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32)),
                1 => (float)(random.NextDouble() * 2 - 1) * MathF.Pow(2, random.Next(-30, 18)),
                _ => (float)Half.MaxValue * (1 + (float)random.NextDouble() * 1e-3f) * (i % 2 == 0 ? 1 : -1),
            };
        return values.Where(v => !float.IsNaN(v)).ToArray();
    }

    [Theory]
    [InlineData(SafetensorsDType.F16)]
    [InlineData(SafetensorsDType.BF16)]
    [InlineData(SafetensorsDType.F32)]
    public void Storing_rounds_as_libtorch_does(SafetensorsDType dtype)
    {
        var values = Values(1);
        using var source = tensor(values);
        using var expected = source.to_type(dtype.ToScalarType());
        var stored = new byte[values.Length * dtype.ElementSize()];
        // One float32 term of weight 1: the sum is the value itself, so only the rounding to dtype is left.
        FloatLanes.WeightedSum(MemoryMarshal.AsBytes(values.AsSpan()), [new FloatLanes.Term(0, SafetensorsDType.F32, 1)], values.Length, dtype, stored);
        Assert.Equal(expected.bytes.ToArray(), stored);
    }

    [Theory]
    [InlineData(SafetensorsDType.F16)]
    [InlineData(SafetensorsDType.BF16)]
    [InlineData(SafetensorsDType.F32)]
    public void Narrowing_rounds_as_libtorch_does_with_signed_zeros_and_infinities(SafetensorsDType dtype)
    {
        // Specials first (the vector lanes), then the random values; the count leaves a scalar tail.
        float[] values = [-0f, 0f, float.PositiveInfinity, float.NegativeInfinity, 65_519f, 65_520f, -65_520f, 5.96e-8f, -2.98e-8f, .. Values(7)];
        using var source = tensor(values);
        using var expected = source.to_type(dtype.ToScalarType());
        var stored = new byte[values.Length * dtype.ElementSize()];
        FloatLanes.Narrow(values, dtype, stored);
        Assert.Equal(expected.bytes.ToArray(), stored);
    }

    [Theory]
    [InlineData(SafetensorsDType.F16)]
    [InlineData(SafetensorsDType.BF16)]
    [InlineData(SafetensorsDType.F32)]
    public void A_weighted_sum_is_libtorchs_multiply_then_add_from_zero(SafetensorsDType output)
    {
        const int count = 50_001;
        // Terms of every stored dtype, mixed, with scales that keep some sums finite and push others past F16's range.
        var dtypes = new[] { SafetensorsDType.F16, SafetensorsDType.BF16, SafetensorsDType.F32, SafetensorsDType.F16 };
        var weights = new[] { 0.7071f, 1.3f, 0.01f, 2.5f };
        var stored = new List<byte>();
        var terms = new List<FloatLanes.Term>();
        using var expected = zeros(count);
        for (int i = 0; i < dtypes.Length; i++)
        {
            using var values = tensor(Values(3 + i).Take(count).ToArray()).to_type(dtypes[i].ToScalarType());
            // Only finite stored values are read (the reads refuse the rest before this runs).
            using var finite = values.nan_to_num(0, 0, 0);
            using var product = finite.to_type(ScalarType.Float32).mul(weights[i]);
            expected.add_(product);
            terms.Add(new FloatLanes.Term(stored.Count, dtypes[i], weights[i]));
            stored.AddRange(finite.bytes.ToArray());
        }
        using var rounded = expected.to_type(output.ToScalarType());
        var result = new byte[count * output.ElementSize()];
        FloatLanes.WeightedSum(stored.ToArray(), terms.ToArray(), count, output, result);
        Assert.Equal(rounded.bytes.ToArray(), result);
    }

    [Theory]
    [InlineData(SafetensorsDType.F16)]
    [InlineData(SafetensorsDType.BF16)]
    [InlineData(SafetensorsDType.F32)]
    public void Widening_to_float32_is_libtorchs_conversion(SafetensorsDType dtype)
    {
        using var stored = tensor(Values(4)).to_type(dtype.ToScalarType());
        using var finite = stored.nan_to_num(0, 0, 0);
        using var expected = finite.to_type(ScalarType.Float32);
        var widened = new float[finite.shape[0]];
        FloatLanes.Widen(finite.bytes, dtype, widened);
        Assert.Equal(expected.bytes.ToArray(), MemoryMarshal.AsBytes(widened.AsSpan()).ToArray());
    }
}
