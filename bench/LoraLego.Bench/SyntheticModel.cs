using System.Text.Json.Nodes;
using LoraLego.Core.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Bench;

/// <summary>
/// Writes a randomly initialised Llama of a given shape as a Hugging Face folder (config.json +
/// model.safetensors), streamed tensor by tensor, for throughput measurements at realistic sizes.
/// </summary>
public static class SyntheticModel
{
    public sealed record Shape(string Name, int Vocab, int Hidden, int Intermediate, int Layers, int Heads, int KeyValueHeads, bool TieEmbeddings);

    /// <summary>Llama-3.2-1B's shape.</summary>
    public static Shape Llama1B { get; } = new("llama-1b", 128256, 2048, 8192, 16, 32, 8, true);

    public static string Write(string folder, Shape shape, SafetensorsDType dtype, long seed = 3)
    {
        Directory.CreateDirectory(folder);
        if (File.Exists(Path.Combine(folder, "config.json")))
            return folder;
        var generator = torch.manual_seed(seed);
        int headDim = shape.Hidden / shape.Heads;
        var items = new List<SafetensorsWriteItem>();
        void Matrix(string name, long rows, long cols) =>
            items.Add(new SafetensorsWriteItem(name, dtype, [rows, cols], () => torch.randn(rows, cols, generator: generator).mul_(0.02)));
        void Ones(string name, long n) => items.Add(new SafetensorsWriteItem(name, dtype, [n], () => torch.ones(n)));
        Matrix("model.embed_tokens.weight", shape.Vocab, shape.Hidden);
        for (int l = 0; l < shape.Layers; l++)
        {
            string p = $"model.layers.{l}";
            Ones($"{p}.input_layernorm.weight", shape.Hidden);
            Ones($"{p}.post_attention_layernorm.weight", shape.Hidden);
            Matrix($"{p}.self_attn.q_proj.weight", shape.Heads * headDim, shape.Hidden);
            Matrix($"{p}.self_attn.k_proj.weight", shape.KeyValueHeads * headDim, shape.Hidden);
            Matrix($"{p}.self_attn.v_proj.weight", shape.KeyValueHeads * headDim, shape.Hidden);
            Matrix($"{p}.self_attn.o_proj.weight", shape.Hidden, shape.Heads * headDim);
            Matrix($"{p}.mlp.gate_proj.weight", shape.Intermediate, shape.Hidden);
            Matrix($"{p}.mlp.up_proj.weight", shape.Intermediate, shape.Hidden);
            Matrix($"{p}.mlp.down_proj.weight", shape.Hidden, shape.Intermediate);
        }
        Ones("model.norm.weight", shape.Hidden);
        if (!shape.TieEmbeddings)
            Matrix("lm_head.weight", shape.Vocab, shape.Hidden);
        SafetensorsWriter.Write(Path.Combine(folder, "model.safetensors"), items, new Dictionary<string, string> { ["format"] = "pt" });
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["vocab_size"] = shape.Vocab,
            ["hidden_size"] = shape.Hidden,
            ["intermediate_size"] = shape.Intermediate,
            ["num_hidden_layers"] = shape.Layers,
            ["num_attention_heads"] = shape.Heads,
            ["num_key_value_heads"] = shape.KeyValueHeads,
            ["head_dim"] = headDim,
            ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 500000.0,
            ["max_position_embeddings"] = 131072,
            ["tie_word_embeddings"] = shape.TieEmbeddings,
            ["hidden_act"] = "silu",
        };
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        return folder;
    }
}
