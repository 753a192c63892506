using System.Text.Json;
using System.Text.Json.Nodes;

namespace LoraLego.Core.Models;

/// <summary>
/// The parts of a Hugging Face config.json that decide the forward pass of a Llama-family
/// decoder (Llama, Mistral, Qwen2). Anything this runtime would compute differently from
/// transformers is refused here rather than discovered as wrong logits.
/// </summary>
public sealed class ModelConfig
{
    /// <summary>The architectures this runtime implements, as named in config.json.</summary>
    public static IReadOnlyList<string> SupportedArchitectures { get; } =
        ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"];

    private ModelConfig(string path, string architecture, JsonObject json)
    {
        Path = path;
        Architecture = architecture;
        VocabSize = Required(json, "vocab_size", path);
        HiddenSize = Required(json, "hidden_size", path);
        IntermediateSize = Required(json, "intermediate_size", path);
        LayerCount = Required(json, "num_hidden_layers", path);
        HeadCount = Required(json, "num_attention_heads", path);
        KeyValueHeadCount = ConfigJson.Integer(json, "num_key_value_heads", path) ?? HeadCount;
        HeadDim = ConfigJson.Integer(json, "head_dim", path) ?? (HeadCount == 0 ? 0 : HiddenSize / HeadCount);
        RmsNormEps = ConfigJson.Number(json, "rms_norm_eps", path) ?? 1e-6;
        TieWordEmbeddings = ConfigJson.Flag(json, "tie_word_embeddings", path) ?? false;
        Rope = RopeSettings.Parse(json, path);

        bool llama = architecture == "LlamaForCausalLM";
        bool llamaAttentionBias = llama && (ConfigJson.Flag(json, "attention_bias", path) ?? false);
        // Qwen2 always has q/k/v biases and none on o_proj; Llama's attention_bias covers all four.
        QkvBias = architecture == "Qwen2ForCausalLM" || llamaAttentionBias;
        OutputBias = llamaAttentionBias;
        MlpBias = llama && (ConfigJson.Flag(json, "mlp_bias", path) ?? false);
        SlidingWindow = ReadSlidingWindow(json, architecture, path);
        Validate(json);
    }

    /// <summary>The config.json this was read from.</summary>
    public string Path { get; }

    /// <summary>The architecture name, e.g. LlamaForCausalLM.</summary>
    public string Architecture { get; }

    public int VocabSize { get; }

    public int HiddenSize { get; }

    public int IntermediateSize { get; }

    public int LayerCount { get; }

    public int HeadCount { get; }

    /// <summary>Key/value heads; fewer than <see cref="HeadCount"/> means grouped-query attention.</summary>
    public int KeyValueHeadCount { get; }

    public int HeadDim { get; }

    public double RmsNormEps { get; }

    /// <summary>True when the output projection reuses the token embeddings.</summary>
    public bool TieWordEmbeddings { get; }

    public RopeSettings Rope { get; }

    /// <summary>q_proj, k_proj and v_proj have biases.</summary>
    public bool QkvBias { get; }

    /// <summary>o_proj has a bias.</summary>
    public bool OutputBias { get; }

    /// <summary>gate_proj, up_proj and down_proj have biases.</summary>
    public bool MlpBias { get; }

    /// <summary>Mistral's sliding attention window in tokens, or null for full causal attention.</summary>
    public int? SlidingWindow { get; }

    /// <summary>Reads and checks a config.json.</summary>
    public static ModelConfig Read(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        if (!File.Exists(path))
            throw new LoraException(LoraErrorKind.NotFound, path, "config.json not found");
        JsonObject json;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                ?? throw new LoraException(LoraErrorKind.InvalidData, path, "config.json is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new LoraException(LoraErrorKind.InvalidData, path, $"config.json is not valid JSON ({e.Message})", e);
        }
        return new ModelConfig(path, ReadArchitecture(json, path), json);
    }

    private static string ReadArchitecture(JsonObject json, string path)
    {
        var names = json["architectures"] is JsonArray array ? array.Select(n => n?.ToString() ?? "").ToArray() : [];
        if (names.Length == 0)
            throw new LoraException(LoraErrorKind.Unsupported, path,
                $"config.json names no architecture (\"architectures\"); supported: {string.Join(", ", SupportedArchitectures)}");
        return names.FirstOrDefault(SupportedArchitectures.Contains)
            ?? throw new LoraException(LoraErrorKind.Unsupported, path,
                $"architecture {string.Join(", ", names)} is not supported (supported: {string.Join(", ", SupportedArchitectures)})");
    }

    private static int? ReadSlidingWindow(JsonObject json, string architecture, string path)
    {
        if (architecture == "MistralForCausalLM")
            return ConfigJson.Integer(json, "sliding_window", path);
        if (architecture == "Qwen2ForCausalLM" && (ConfigJson.Flag(json, "use_sliding_window", path) ?? false))
            throw new LoraException(LoraErrorKind.Unsupported, path,
                "Qwen2 with use_sliding_window is not supported (its per-layer windows are not implemented)");
        return null;
    }

    private void Validate(JsonObject json)
    {
        string activation = ConfigJson.Text(json, "hidden_act", Path) ?? "silu";
        if (activation != "silu")
            throw new LoraException(LoraErrorKind.Unsupported, Path, $"hidden_act '{activation}' is not supported (only silu, the SwiGLU MLP)");
        if (HeadCount == 0 || KeyValueHeadCount == 0 || HeadCount % KeyValueHeadCount != 0)
            throw new LoraException(LoraErrorKind.InvalidData, Path,
                $"num_attention_heads {HeadCount} is not a positive multiple of num_key_value_heads {KeyValueHeadCount}");
        if (HeadDim == 0 || HeadDim % 2 != 0)
            throw new LoraException(LoraErrorKind.InvalidData, Path, $"head_dim {HeadDim} must be positive and even for rotary embeddings");
    }

    private static int Required(JsonObject json, string name, string path) =>
        ConfigJson.Integer(json, name, path) ?? throw new LoraException(LoraErrorKind.Unsupported, path, $"config.json has no '{name}'");
}
