using System.Security.Cryptography;
using System.Text.Json.Nodes;
using LoraLego.Core.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Bench;

/// <summary>
/// Writes tests/fixtures/sd: kohya and diffusers LoRA files that follow sd-scripts' and diffusers' layouts
/// (names, 4-D LoCon factors, 0-d alphas of several dtypes, ss_* metadata and sshs_model_hash,
/// lora_adapter_metadata). Names and shapes are written out by hand from the mapping rules, not taken from
/// LoraLego's tables, so the tests check the tables against them.
/// </summary>
public static class SdFixtures
{
    /// <summary>One module: kohya name, diffusers key, out, in, kernel (0 for linear), rank, alpha (null: none stored), alpha dtype.</summary>
    private sealed record Module(string Kohya, string Diffusers, long Out, long In, int Kernel, int Rank, double? Alpha, SafetensorsDType AlphaDType = SafetensorsDType.F16);

    private static readonly Module[] Sd15 =
    [
        new("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", 320, 320, 0, 4, 2),
        new("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", 320, 768, 0, 4, 2),
        new("lora_unet_down_blocks_0_attentions_0_proj_in", "unet.down_blocks.0.attentions.0.proj_in", 320, 320, 1, 4, 2),
        new("lora_unet_down_blocks_0_resnets_0_conv1", "unet.down_blocks.0.resnets.0.conv1", 320, 320, 3, 2, 1),
        new("lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_ff_net_2", "unet.up_blocks.3.attentions.2.transformer_blocks.0.ff.net.2", 320, 1280, 0, 4, 2),
        new("lora_unet_mid_block_resnets_1_conv2", "unet.mid_block.resnets.1.conv2", 1280, 1280, 3, 2, 1),
        new("lora_unet_up_blocks_0_upsamplers_0_conv", "unet.up_blocks.0.upsamplers.0.conv", 1280, 1280, 3, 2, null),
        new("lora_te_text_model_encoder_layers_0_self_attn_q_proj", "text_encoder.text_model.encoder.layers.0.self_attn.q_proj", 768, 768, 0, 8, 4),
        new("lora_te_text_model_encoder_layers_11_mlp_fc1", "text_encoder.text_model.encoder.layers.11.mlp.fc1", 3072, 768, 0, 4, 8, SafetensorsDType.I64),
    ];

    // SDXL: kohya uses the LDM names (input_blocks.{3i+j+1}, output_blocks.{3i+j}, middle_block.{0,1,2}).
    private static readonly Module[] Sdxl =
    [
        new("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q", 640, 640, 0, 4, 2),
        new("lora_unet_input_blocks_5_1_transformer_blocks_1_attn2_to_k", "unet.down_blocks.1.attentions.1.transformer_blocks.1.attn2.to_k", 640, 2048, 0, 4, 2),
        new("lora_unet_input_blocks_4_1_proj_in", "unet.down_blocks.1.attentions.0.proj_in", 640, 640, 0, 4, 2),
        new("lora_unet_input_blocks_1_0_in_layers_2", "unet.down_blocks.0.resnets.0.conv1", 320, 320, 3, 2, 1),
        new("lora_unet_input_blocks_3_0_op", "unet.down_blocks.0.downsamplers.0.conv", 320, 320, 3, 2, 1),
        new("lora_unet_output_blocks_2_2_conv", "unet.up_blocks.0.upsamplers.0.conv", 1280, 1280, 3, 2, 1),
        new("lora_unet_middle_block_1_transformer_blocks_9_ff_net_0_proj", "unet.mid_block.attentions.0.transformer_blocks.9.ff.net.0.proj", 10240, 1280, 0, 4, 2),
        new("lora_unet_output_blocks_3_0_skip_connection", "unet.up_blocks.1.resnets.0.conv_shortcut", 640, 1920, 1, 4, 2),
        new("lora_unet_output_blocks_8_0_emb_layers_1", "unet.up_blocks.2.resnets.2.time_emb_proj", 320, 1280, 0, 8, 3),
        new("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", "text_encoder.text_model.encoder.layers.0.self_attn.q_proj", 768, 768, 0, 4, 2),
        new("lora_te2_text_model_encoder_layers_31_mlp_fc2", "text_encoder_2.text_model.encoder.layers.31.mlp.fc2", 1280, 5120, 0, 4, 2),
    ];

    public static void Write(string folder)
    {
        Directory.CreateDirectory(folder);
        WriteKohya(Path.Combine(folder, "sd15-kohya.safetensors"), Sd15, seed: 1, "sd_v1", "sd15-kohya");
        WriteKohya(Path.Combine(folder, "sd15-kohya-b.safetensors"), Sd15.Select(m => m with { Rank = m.Rank * 2, Alpha = m.Alpha * 3 }).ToArray(), seed: 2, "sd_v1", "sd15-kohya-b");
        WriteKohya(Path.Combine(folder, "sdxl-kohya.safetensors"), Sdxl, seed: 3, "sdxl_base_v1-0", "sdxl-kohya");
        Directory.CreateDirectory(Path.Combine(folder, "sdxl-diffusers"));
        WriteDiffusers(Path.Combine(folder, "sdxl-diffusers", "pytorch_lora_weights.safetensors"), Sdxl, seed: 3);
        WriteUnsupported(Path.Combine(folder, "unsupported"));
    }

    // The same seed gives the same factors in both formats: a diffusers file is the kohya file converted.
    private static (Tensor Down, Tensor Up) Factors(Module m, Generator generator)
    {
        long[] down = m.Kernel == 0 ? [m.Rank, m.In] : [m.Rank, m.In, m.Kernel, m.Kernel];
        long[] up = m.Kernel == 0 ? [m.Out, m.Rank] : [m.Out, m.Rank, 1, 1];
        return (randn(down, generator: generator).mul_(1.0 / Math.Sqrt(m.In * Math.Max(1, m.Kernel * m.Kernel))).to_type(ScalarType.Float16),
            randn(up, generator: generator).mul_(0.05).to_type(ScalarType.Float16));
    }

    private static void WriteKohya(string path, Module[] modules, long seed, string version, string outputName)
    {
        var generator = manual_seed(seed);
        var items = new List<SafetensorsWriteItem>();
        foreach (var m in modules)
        {
            var (down, up) = Factors(m, generator);
            items.Add(Item($"{m.Kohya}.lora_down.weight", down));
            items.Add(Item($"{m.Kohya}.lora_up.weight", up));
            if (m.Alpha is { } alpha)
                items.Add(Item($"{m.Kohya}.alpha", tensor(alpha, ScalarType.Float64).to_type(m.AlphaDType.ToScalarType())));
        }
        // safetensors' order: widest dtype first, then by name.
        items = items.OrderByDescending(i => i.DType.ElementSize()).ThenBy(i => i.DType == SafetensorsDType.I64 ? 0 : 1).ThenBy(i => i.Name, StringComparer.Ordinal).ToList();
        var metadata = new Dictionary<string, string>
        {
            ["ss_network_module"] = "networks.lora",
            ["ss_network_dim"] = modules[0].Rank.ToString(),
            ["ss_network_alpha"] = $"{modules[0].Alpha:0.0}",
            ["ss_network_args"] = "{\"conv_dim\": \"2\", \"conv_alpha\": \"1\"}",
            ["ss_base_model_version"] = version,
            ["ss_v2"] = "False",
            ["ss_output_name"] = outputName,
            ["ss_training_comment"] = "LoraLego test fixture (synthetic values)",
        };
        using var buffer = new MemoryStream();
        SafetensorsWriter.Write(buffer, items, metadata);
        var bytes = buffer.ToArray();
        long dataStart = 8 + (long)BitConverter.ToUInt64(bytes, 0);
        metadata["sshs_model_hash"] = Convert.ToHexString(SHA256.HashData(bytes.AsSpan((int)dataStart))).ToLowerInvariant();
        SafetensorsWriter.Write(path, items, metadata);
    }

    private static void WriteDiffusers(string path, Module[] modules, long seed)
    {
        var generator = manual_seed(seed);
        var items = new List<SafetensorsWriteItem>();
        var packed = new JsonObject();
        foreach (var component in modules.GroupBy(m => m.Diffusers[..m.Diffusers.IndexOf('.')]))
        {
            var ranks = new JsonObject();
            var alphas = new JsonObject();
            foreach (var m in component)
            {
                string local = m.Diffusers[(component.Key.Length + 1)..];
                ranks[local] = m.Rank;
                alphas[local] = m.Alpha ?? m.Rank;
            }
            packed[$"{component.Key}.r"] = component.First().Rank;
            packed[$"{component.Key}.lora_alpha"] = component.First().Alpha ?? component.First().Rank;
            packed[$"{component.Key}.rank_pattern"] = ranks;
            packed[$"{component.Key}.alpha_pattern"] = alphas;
            packed[$"{component.Key}.target_modules"] = new JsonArray(component.Select(m => (JsonNode)m.Diffusers[(component.Key.Length + 1)..]).ToArray());
        }
        foreach (var m in modules)
        {
            var (down, up) = Factors(m, generator);
            items.Add(Item($"{m.Diffusers}.lora_A.weight", down));
            items.Add(Item($"{m.Diffusers}.lora_B.weight", up));
        }
        SafetensorsWriter.Write(path, items, new Dictionary<string, string> { ["format"] = "pt", ["lora_adapter_metadata"] = packed.ToJsonString() });
    }

    // One small file per kind LoraLego refuses: Tucker LoCon (lora_mid), LoHa, LoKr, DoRA.
    private static void WriteUnsupported(string folder)
    {
        Directory.CreateDirectory(folder);
        const string conv = "lora_unet_down_blocks_0_resnets_0_conv1";
        const string linear = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q";
        void File(string name, params (string Tensor, long[] Shape)[] tensors) =>
            SafetensorsWriter.Write(Path.Combine(folder, name), tensors.Select(t => Item(t.Tensor, ones(t.Shape, ScalarType.Float16))).ToList());
        File("tucker.safetensors", ($"{conv}.lora_down.weight", [2, 320, 1, 1]), ($"{conv}.lora_mid.weight", [2, 2, 3, 3]), ($"{conv}.lora_up.weight", [320, 2, 1, 1]));
        File("loha.safetensors", ($"{linear}.hada_w1_a", [320, 2]), ($"{linear}.hada_w1_b", [2, 320]), ($"{linear}.hada_w2_a", [320, 2]), ($"{linear}.hada_w2_b", [2, 320]));
        File("lokr.safetensors", ($"{linear}.lokr_w1", [4, 4]), ($"{linear}.lokr_w2", [80, 80]));
        File("dora.safetensors", ($"{linear}.lora_down.weight", [2, 320]), ($"{linear}.lora_up.weight", [320, 2]), ($"{linear}.dora_scale", [1, 320]));
    }

    private static SafetensorsWriteItem Item(string name, Tensor value) =>
        new(name, SafetensorsDTypes.FromScalarType(value.dtype), value.shape, () => value.clone());
}
