using System.Text.Json.Nodes;

namespace LoraLego.Tests;

/// <summary>
/// Reads tensors' raw bytes with an independent, minimal parser (not LoraLego's), so the
/// round-trip tests compare against the format itself rather than against the code under test.
/// </summary>
public static class SafetensorsBytes
{
    public static Dictionary<string, byte[]> TensorBytes(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int n = (int)BitConverter.ToUInt64(bytes, 0);
        var header = JsonNode.Parse(bytes.AsSpan(8, n))!.AsObject();
        var result = new Dictionary<string, byte[]>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__")
                continue;
            var off = node!["data_offsets"]!.AsArray();
            int begin = 8 + n + (int)off[0]!, end = 8 + n + (int)off[1]!;
            result[name] = bytes[begin..end];
        }
        return result;
    }

    /// <summary>The header's __metadata__ (string values), empty when it has none.</summary>
    public static Dictionary<string, string> Metadata(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int n = (int)BitConverter.ToUInt64(bytes, 0);
        var header = JsonNode.Parse(bytes.AsSpan(8, n))!.AsObject();
        return header["__metadata__"] is JsonObject metadata ? metadata.ToDictionary(p => p.Key, p => p.Value!.GetValue<string>()) : [];
    }

    /// <summary>Whether two files hold the same tensors, byte for byte (names, and each tensor's bytes).</summary>
    public static bool SameTensors(string path, string other)
    {
        var x = TensorBytes(path);
        var y = TensorBytes(other);
        return x.Count == y.Count && x.All(kv => y.TryGetValue(kv.Key, out var v) && kv.Value.AsSpan().SequenceEqual(v));
    }

    public static float[] Floats(byte[] bytes) => Enumerable.Range(0, bytes.Length / 4).Select(i => BitConverter.ToSingle(bytes, i * 4)).ToArray();

    public static long[] Longs(byte[] bytes) => Enumerable.Range(0, bytes.Length / 8).Select(i => BitConverter.ToInt64(bytes, i * 8)).ToArray();
}
