using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// torch.bernoulli of a tensor filled with one probability, on a CPU generator, outcome for outcome: p is first
/// rounded to the tensor's dtype (through float32 for float16 and bfloat16, as torch's fill converts it); then each
/// entry in row-major order is kept when a uniform draw is below p. For float64 the uniform is the low 53 bits of two
/// words (the first the high half) over 2^53; for the other dtypes p is compared as a float32 with the low 24 bits
/// of one word over 2^24. Both are exact integer comparisons with the threshold ceil(p 2^bits).
/// </summary>
internal static class TorchBernoulli
{
    private const int Chunk = 1024;

    /// <summary>Writes the outcomes (1 kept, 0 dropped) of the next <paramref name="mask"/>.Length entries.</summary>
    public static void Draw(Mt19937 engine, double probability, ScalarType dtype, Span<float> mask)
    {
        if (dtype == ScalarType.Float64)
            DrawDouble(engine, (ulong)Math.Ceiling(probability * (1UL << 53)), mask);
        else
            DrawSingle(engine, SingleThreshold(probability, dtype), mask);
    }

    /// <summary>
    /// The outcomes of the next <paramref name="count"/> entries of a tensor of <paramref name="dtype"/> (not float64)
    /// as bits: entry j at bit j % 8 of byte j / 8, 1 where kept; the spare bits of the last byte are 0.
    /// </summary>
    public static void DrawBits(Mt19937 engine, double probability, ScalarType dtype, int count, Span<byte> bits)
    {
        if (dtype == ScalarType.Float64)
            throw new ArgumentException("bits are drawn for dtypes of one word per entry", nameof(dtype));
        int threshold = SingleThreshold(probability, dtype);
        Span<uint> words = stackalloc uint[Chunk];
        var low24 = Vector256.Create(0xffffff);
        var limit = Vector256.Create(threshold);
        for (int at = 0; at < count; at += Chunk)
        {
            int length = Math.Min(Chunk, count - at);
            engine.Fill(words[..length]);
            var draws = MemoryMarshal.Cast<uint, int>(words);
            var target = bits[(at / 8)..];
            int i = 0;
            for (; i + 8 <= length; i += 8)
                target[i / 8] = (byte)Vector256.ExtractMostSignificantBits(Vector256.LessThan(Vector256.Create(draws[i..]) & low24, limit));
            if (i < length)
                target[i / 8] = 0;
            for (; i < length; i++)
                if ((draws[i] & 0xffffff) < threshold)
                    target[i / 8] |= (byte)(1 << (i % 8));
        }
    }

    /// <summary>Moves the engine past the draws of <paramref name="entries"/> outcomes.</summary>
    public static void Skip(Mt19937 engine, ScalarType dtype, long entries) =>
        engine.Skip(dtype == ScalarType.Float64 ? 2 * entries : entries);

    // A float32 (or narrower) probability compared with 24 bits of a word: kept below ceil(p 2^24).
    private static int SingleThreshold(double probability, ScalarType dtype) => (int)Math.Ceiling((double)Rounded(probability, dtype) * (1 << 24));

    /// <summary>The probability as the float32 torch compares: its value in <paramref name="dtype"/>.</summary>
    internal static float Rounded(double probability, ScalarType dtype)
    {
        float single = (float)probability;
        return dtype switch
        {
            ScalarType.Float32 => single,
            ScalarType.Float16 => (float)(Half)single,
            ScalarType.BFloat16 => BFloat16(single),
            _ => throw new ArgumentException($"bernoulli draws need a floating-point dtype, not {dtype}", nameof(dtype)),
        };
    }

    // Round to nearest even on the upper 16 bits, as c10's BFloat16 converts a float.
    private static float BFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        bits += 0x7fff + ((bits >> 16) & 1);
        return BitConverter.UInt32BitsToSingle(bits & 0xffff0000);
    }

    private static void DrawSingle(Mt19937 engine, int threshold, Span<float> mask)
    {
        Span<uint> words = stackalloc uint[Chunk];
        int width = Vector<uint>.Count;
        var low24 = new Vector<int>(0xffffff);
        var limit = new Vector<int>(threshold);
        var one = new Vector<int>(BitConverter.SingleToInt32Bits(1f));
        while (!mask.IsEmpty)
        {
            int count = Math.Min(Chunk, mask.Length);
            engine.Fill(words[..count]);
            var draws = MemoryMarshal.Cast<uint, int>(words);
            var outcomes = MemoryMarshal.Cast<float, int>(mask);
            int i = 0;
            for (; i + width <= count; i += width)
                (Vector.LessThan(new Vector<int>(draws[i..]) & low24, limit) & one).CopyTo(outcomes[i..]);
            for (; i < count; i++)
                mask[i] = (draws[i] & 0xffffff) < threshold ? 1f : 0f;
            mask = mask[count..];
        }
    }

    private static void DrawDouble(Mt19937 engine, ulong threshold, Span<float> mask)
    {
        Span<uint> words = stackalloc uint[2 * Chunk];
        while (!mask.IsEmpty)
        {
            int count = Math.Min(Chunk, mask.Length);
            engine.Fill(words[..(2 * count)]);
            for (int i = 0; i < count; i++)
                mask[i] = ((ulong)(words[2 * i] & 0x1fffff) << 32 | words[2 * i + 1]) < threshold ? 1f : 0f;
            mask = mask[count..];
        }
    }
}
