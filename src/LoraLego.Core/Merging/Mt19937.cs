using System.Numerics;

namespace LoraLego.Core.Merging;

/// <summary>
/// The 32-bit Mersenne Twister of libtorch's CPU generator, word for word: seeded as torch seeds it (the low 32 bits
/// of the seed), its words drawn in bulk. The state is regenerated a vector of words at a time and tempered lane by
/// lane, so a stream of draws costs a fraction of libtorch's one locked draw per entry, and skipping words costs only
/// the regeneration.
/// </summary>
internal sealed class Mt19937
{
    private const int N = 624;
    private const int M = 397;
    private const uint MatrixA = 0x9908b0df;
    private const uint UpperMask = 0x80000000;
    private const uint LowerMask = 0x7fffffff;

    private readonly uint[] state = new uint[N];

    // The index of the next word to temper; N when the state must be regenerated first (as after seeding).
    private int next = N;

    public Mt19937(ulong seed)
    {
        state[0] = (uint)seed;
        for (int i = 1; i < N; i++)
            state[i] = 1812433253u * (state[i - 1] ^ (state[i - 1] >> 30)) + (uint)i;
    }

    private Mt19937(Mt19937 other)
    {
        other.state.CopyTo(state, 0);
        next = other.next;
    }

    /// <summary>An engine at the same point of the stream, drawing independently from here on.</summary>
    public Mt19937 Clone() => new(this);

    public uint Next()
    {
        if (next == N)
            Regenerate();
        return Temper(state[next++]);
    }

    /// <summary>The next <paramref name="destination"/>.Length words, as that many calls of <see cref="Next"/> return them.</summary>
    public void Fill(Span<uint> destination)
    {
        while (!destination.IsEmpty)
        {
            if (next == N)
                Regenerate();
            int count = Math.Min(N - next, destination.Length);
            TemperInto(state.AsSpan(next, count), destination[..count]);
            next += count;
            destination = destination[count..];
        }
    }

    /// <summary>Moves past <paramref name="count"/> words without tempering them.</summary>
    public void Skip(long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        long left = N - next;
        if (count <= left)
        {
            next += (int)count;
            return;
        }
        count -= left;
        long regenerations = (count + N - 1) / N;
        for (long r = 0; r < regenerations; r++)
            Regenerate();
        next = (int)(count - (regenerations - 1) * N);
    }

    private static uint Temper(uint y)
    {
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        return y ^ (y >> 18);
    }

    private static void TemperInto(ReadOnlySpan<uint> words, Span<uint> destination)
    {
        int width = Vector<uint>.Count, i = 0;
        var b = new Vector<uint>(0x9d2c5680);
        var c = new Vector<uint>(0xefc60000);
        for (; i + width <= words.Length; i += width)
        {
            var y = new Vector<uint>(words[i..]);
            y ^= Vector.ShiftRightLogical(y, 11);
            y ^= Vector.ShiftLeft(y, 7) & b;
            y ^= Vector.ShiftLeft(y, 15) & c;
            y ^= Vector.ShiftRightLogical(y, 18);
            y.CopyTo(destination[i..]);
        }
        for (; i < words.Length; i++)
            destination[i] = Temper(words[i]);
    }

    /// <summary>
    /// The next N words of state. Word i reads words i and i + 1 before they change and word i + M after the
    /// words below 227 (= N - M) have changed: a vector of words below 227 reads only old words, and a vector from
    /// 227 on reads words that changed at least 227 positions earlier, so only the vector straddling 227 and the
    /// last word (which reads the new word 0) go one word at a time.
    /// </summary>
    private void Regenerate()
    {
        var s = state.AsSpan();
        int width = Vector<uint>.Count, i = 0;
        for (; i + width <= N - M; i += width)
            Twist(new Vector<uint>(s[(i + M)..]), new Vector<uint>(s[i..]), new Vector<uint>(s[(i + 1)..])).CopyTo(s[i..]);
        for (; i < N - M; i++)
            s[i] = s[i + M] ^ Twist(s[i], s[i + 1]);
        for (; i + width <= N - 1; i += width)
            Twist(new Vector<uint>(s[(i + M - N)..]), new Vector<uint>(s[i..]), new Vector<uint>(s[(i + 1)..])).CopyTo(s[i..]);
        for (; i < N - 1; i++)
            s[i] = s[i + M - N] ^ Twist(s[i], s[i + 1]);
        s[N - 1] = s[M - 1] ^ Twist(s[N - 1], s[0]);
        next = 0;
    }

    private static uint Twist(uint u, uint v) => ((u & UpperMask) | (v & LowerMask)) >> 1 ^ ((v & 1) != 0 ? MatrixA : 0);

    private static Vector<uint> Twist(Vector<uint> far, Vector<uint> u, Vector<uint> v)
    {
        var mixed = (u & new Vector<uint>(UpperMask)) | (v & new Vector<uint>(LowerMask));
        var odd = Vector.Equals(v & Vector<uint>.One, Vector<uint>.One);
        return far ^ Vector.ShiftRightLogical(mixed, 1) ^ (odd & new Vector<uint>(MatrixA));
    }
}
