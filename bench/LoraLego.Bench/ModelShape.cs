namespace LoraLego.Bench;

/// <summary>The linear layers of a Llama-family model that LoRAs usually target.</summary>
public sealed record ModelShape(string Name, int Layers, int Hidden, int Intermediate, int KeyValue)
{
    public static ModelShape Llama7B { get; } = new("7b", 32, 4096, 11008, 4096);

    public static ModelShape Llama70B { get; } = new("70b", 80, 8192, 28672, 1024);

    /// <summary>A 1B-shaped Llama (Llama-3.2-1B: 16 layers, 2048 hidden, 8192 intermediate, 8 KV heads of 64).</summary>
    public static ModelShape Llama1B { get; } = new("1b", 16, 2048, 8192, 512);

    public static ModelShape Parse(string name) => name.ToLowerInvariant() switch
    {
        "7b" => Llama7B,
        "70b" => Llama70B,
        "1b" => Llama1B,
        _ => throw new ArgumentException($"unknown shape '{name}' (7b, 70b, 1b)"),
    };

    /// <summary>(module key, in features, out features) for every adapted linear layer.</summary>
    public IEnumerable<(string Key, int In, int Out)> Modules()
    {
        for (int l = 0; l < Layers; l++)
        {
            string p = $"model.layers.{l}";
            yield return ($"{p}.self_attn.q_proj", Hidden, Hidden);
            yield return ($"{p}.self_attn.k_proj", Hidden, KeyValue);
            yield return ($"{p}.self_attn.v_proj", Hidden, KeyValue);
            yield return ($"{p}.self_attn.o_proj", Hidden, Hidden);
            yield return ($"{p}.mlp.gate_proj", Hidden, Intermediate);
            yield return ($"{p}.mlp.up_proj", Hidden, Intermediate);
            yield return ($"{p}.mlp.down_proj", Intermediate, Hidden);
        }
    }
}
