using System.Text.Json.Nodes;

namespace LoraLego.Module.Tests;

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
}
