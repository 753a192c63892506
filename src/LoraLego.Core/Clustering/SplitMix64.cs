namespace LoraLego.Core.Clustering;

/// <summary>
/// Steele, Lea and Flood's SplitMix64 generator. System.Random's sequence is an implementation
/// detail of the runtime; this one is fixed arithmetic, so a seed gives the same clustering on
/// every machine and every .NET version.
/// </summary>
public sealed class SplitMix64
{
    private ulong _state;

    public SplitMix64(ulong seed) => _state = seed;

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1), from the top 53 bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [0, <paramref name="count"/>).</summary>
    public int NextIndex(int count) => (int)(NextDouble() * count);
}
