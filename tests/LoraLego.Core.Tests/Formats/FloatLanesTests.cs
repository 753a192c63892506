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
        FloatLanes.Store(values, dtype, stored);
        Assert.Equal(expected.bytes.ToArray(), stored);
    }

    [Theory]
    [InlineData(SafetensorsDType.F16)]
    [InlineData(SafetensorsDType.BF16)]
    [InlineData(SafetensorsDType.F32)]
    public void Adding_scaled_values_is_libtorchs_multiply_then_add(SafetensorsDType dtype)
    {
        var start = Values(2).Select(v => v * 1e-3f).Take(50_001).ToArray();
        using var stored = tensor(Values(3).Take(start.Length).ToArray()).to_type(dtype.ToScalarType());
        // Only finite stored values are read (the reads refuse the rest before this runs).
        using var finite = stored.nan_to_num(0, 0, 0);
        const float weight = 0.7071f;
        using var expected = tensor(start).add(finite.to_type(ScalarType.Float32).mul(weight));
        var accumulator = (float[])start.Clone();
        FloatLanes.AddScaled(finite.bytes, dtype, weight, accumulator);
        Assert.Equal(expected.bytes.ToArray(), MemoryMarshal.AsBytes(accumulator.AsSpan()).ToArray());
    }

    [Theory]
    [InlineData(SafetensorsDType.F16)]
    [InlineData(SafetensorsDType.BF16)]
    [InlineData(SafetensorsDType.F32)]
    public void Widening_to_float64_is_libtorchs_conversion(SafetensorsDType dtype)
    {
        using var stored = tensor(Values(4)).to_type(dtype.ToScalarType());
        using var finite = stored.nan_to_num(0, 0, 0);
        using var expected = finite.to_type(ScalarType.Float64);
        var widened = new double[finite.shape[0]];
        FloatLanes.Widen(finite.bytes, dtype, widened);
        Assert.Equal(expected.bytes.ToArray(), MemoryMarshal.AsBytes(widened.AsSpan()).ToArray());
    }
}
