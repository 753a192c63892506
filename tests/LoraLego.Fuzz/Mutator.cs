using System.Text;

namespace LoraLego.Fuzz;

/// <summary>
/// Seeded, deterministic mutations of a seed input: byte flips, interesting bytes, insertions,
/// deletions, truncations, duplications, splices with another seed, and token-aware edits of JSON
/// (numbers, strings, brackets and literals swapped for the values readers get wrong). The same
/// seed gives the same sequence of inputs on every machine.
/// </summary>
public sealed class Mutator(ulong seed)
{
    private ulong _state = seed;

    private static readonly byte[] InterestingBytes = [0x00, 0xFF, 0x7F, 0x80, 0x01, (byte)'"', (byte)'{', (byte)'}', (byte)'[', (byte)']', (byte)',', (byte)':', (byte)'\\', (byte)'\n', (byte)'-', (byte)'e'];

    private static readonly string[] InterestingTokens =
    [
        "-1", "0", "1", "2", "-0", "1e999", "-1e999", "1e-999", "2.5", "NaN", "Infinity", "18446744073709551615", "9223372036854775807",
        "-9223372036854775808", "4294967296", "2147483648", "\"\"", "\"x\"", "\"16\"", "\"true\"", "null", "true", "false", "[]", "{}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "\"\\ud800\"", "\"F16\"", "\"BF16\"", "\"I64\"", "\"F64\"", "[0, 0]", "[1, 0]", "[4, 2]", "[2, 4]", "\"..\"", "\"../..\"", "\"/\"",
    ];

    public ulong Next()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public int Below(int n) => n <= 0 ? 0 : (int)(Next() % (ulong)n);

    /// <summary>One to four stacked mutations of <paramref name="input"/>; <paramref name="other"/> is a second seed to splice from.</summary>
    /// <param name="focus">Bytes [0, focus) are where structure lives (a safetensors header); most byte-level edits land there.</param>
    public byte[] Mutate(byte[] input, byte[] other, int focus)
    {
        var data = new List<byte>(input);
        int rounds = 1 + Below(4);
        for (int r = 0; r < rounds; r++)
        {
            int span = Math.Max(1, Below(4) == 0 ? data.Count : Math.Min(focus, data.Count));
            int at = Below(span);
            switch (Below(11))
            {
                case 0 when data.Count > 0:
                    data[at % data.Count] ^= (byte)(1 << Below(8));
                    break;
                case 1 when data.Count > 0:
                    data[at % data.Count] = InterestingBytes[Below(InterestingBytes.Length)];
                    break;
                case 2:
                    data.InsertRange(Math.Min(at, data.Count), Enumerable.Range(0, 1 + Below(8)).Select(_ => (byte)Next()));
                    break;
                case 3 when data.Count > 1:
                    int start = at % data.Count;
                    data.RemoveRange(start, Math.Min(data.Count - start, 1 + Below(16)));
                    break;
                case 4:
                    data.RemoveRange(Math.Min(at, data.Count), data.Count - Math.Min(at, data.Count));
                    break;
                case 5 when data.Count > 1:
                    int from = Below(data.Count), length = Math.Min(data.Count - from, 1 + Below(32));
                    data.InsertRange(Math.Min(at, data.Count), data.GetRange(from, length));
                    break;
                case 6 when other.Length > 0:
                    int cut = Math.Min(at, data.Count), otherCut = Below(other.Length);
                    data.RemoveRange(cut, data.Count - cut);
                    data.AddRange(other.AsSpan(otherCut).ToArray());
                    break;
                case 7 or 8 or 9:
                    ReplaceToken(data, focus);
                    break;
                default:
                    // The 8-byte little-endian length of a safetensors header.
                    if (data.Count >= 8)
                        BitConverter.GetBytes(Below(3) switch { 0 => Next(), 1 => (ulong)Below(1 << 12), _ => BitConverter.ToUInt64(data.ToArray(), 0) + (ulong)(Below(17) - 8) })
                            .CopyTo(CollectionsMarshalSpan(data));
                    break;
            }
        }
        return data.ToArray();
    }

    private static Span<byte> CollectionsMarshalSpan(List<byte> list) => System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list);

    // Replaces one JSON token (a number, a string, a literal, a bracket) in the structured part by an interesting one.
    private void ReplaceToken(List<byte> data, int focus)
    {
        int limit = Math.Min(data.Count, Math.Max(focus, 1));
        var text = Encoding.Latin1.GetString(data.GetRange(0, limit).ToArray());
        var tokens = System.Text.RegularExpressions.Regex.Matches(text, "-?[0-9][0-9.eE+-]*|\"(?:[^\"\\\\]|\\\\.)*\"|true|false|null|\\[|\\{");
        var replacement = Encoding.UTF8.GetBytes(InterestingTokens[Below(InterestingTokens.Length)]);
        if (tokens.Count == 0)
        {
            data.InsertRange(Below(limit + 1), replacement);
            return;
        }
        var token = tokens[Below(tokens.Count)];
        data.RemoveRange(token.Index, token.Length);
        data.InsertRange(token.Index, replacement);
    }
}
