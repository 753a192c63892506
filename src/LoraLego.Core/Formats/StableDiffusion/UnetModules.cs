using LoraLego.Core.Adapters;

namespace LoraLego.Core.Formats.StableDiffusion;

/// <summary>
/// Every linear and convolution layer of a UNet2DConditionModel, built from its config the way diffusers
/// builds the model, with both its diffusers path and its LDM path (see <see cref="LdmUnetNames"/>).
/// </summary>
internal sealed class UnetModules
{
    private static readonly ConvKernel Conv3x3 = new(3, 3);
    private static readonly ConvKernel Conv1x1 = new(1, 1);

    private readonly UnetConfig _config;
    private readonly bool _kohyaUsesLdmNames;
    private readonly List<SdModule> _modules = [];

    private UnetModules(UnetConfig config, bool kohyaUsesLdmNames)
    {
        _config = config;
        _kohyaUsesLdmNames = kohyaUsesLdmNames;
    }

    /// <param name="kohyaUsesLdmNames">kohya names SDXL's layers by their LDM paths, SD1.x's by their diffusers paths.</param>
    public static IReadOnlyList<SdModule> Build(UnetConfig config, bool kohyaUsesLdmNames)
    {
        var unet = new UnetModules(config, kohyaUsesLdmNames);
        unet.BuildAll();
        return unet._modules;
    }

    private void BuildAll()
    {
        var c = _config;
        var channels = c.BlockOutChannels;
        int blocks = channels.Length;
        long temb = c.TimeEmbeddingDim;
        Add("conv_in", "input_blocks.0.0", c.InChannels, channels[0], Conv3x3);
        Add("time_embedding.linear_1", "time_embed.0", channels[0], temb, null);
        Add("time_embedding.linear_2", "time_embed.2", temb, temb, null);
        if (c.AdditionEmbedding is { } addIn)
        {
            Add("add_embedding.linear_1", "label_emb.0.0", addIn, temb, null);
            Add("add_embedding.linear_2", "label_emb.0.2", temb, temb, null);
        }

        long current = channels[0];
        for (int i = 0; i < blocks; i++)
        {
            long output = channels[i];
            for (int j = 0; j < c.LayersPerBlock; j++)
            {
                Resnet($"down_blocks.{i}.resnets.{j}", LdmUnetNames.DownResnet(i, j), j == 0 ? current : output, output);
                if (c.CrossAttention[i])
                    Transformer($"down_blocks.{i}.attentions.{j}", LdmUnetNames.DownAttention(i, j), output, c.TransformerDepth[i]);
            }
            if (i < blocks - 1)
                Add($"down_blocks.{i}.downsamplers.0.conv", LdmUnetNames.Downsampler(i), output, output, Conv3x3);
            current = output;
        }

        long mid = channels[^1];
        Resnet("mid_block.resnets.0", LdmUnetNames.MidBlock(0), mid, mid);
        Transformer("mid_block.attentions.0", LdmUnetNames.MidBlock(1), mid, c.TransformerDepth[^1]);
        Resnet("mid_block.resnets.1", LdmUnetNames.MidBlock(2), mid, mid);

        long outputChannels = channels[^1];
        for (int i = 0; i < blocks; i++)
        {
            int mirrored = blocks - 1 - i;
            long previous = outputChannels;
            outputChannels = channels[mirrored];
            long input = channels[Math.Max(mirrored - 1, 0)];
            bool attention = c.CrossAttention[mirrored];
            int layers = c.LayersPerBlock + 1;
            for (int j = 0; j < layers; j++)
            {
                long skip = j == layers - 1 ? input : outputChannels;
                long resnetIn = j == 0 ? previous : outputChannels;
                Resnet($"up_blocks.{i}.resnets.{j}", LdmUnetNames.UpResnet(i, j), resnetIn + skip, outputChannels);
                if (attention)
                    Transformer($"up_blocks.{i}.attentions.{j}", LdmUnetNames.UpAttention(i, j), outputChannels, c.TransformerDepth[mirrored]);
            }
            if (i < blocks - 1)
                Add($"up_blocks.{i}.upsamplers.0.conv", LdmUnetNames.Upsampler(i, attention), outputChannels, outputChannels, Conv3x3);
        }
        Add("conv_out", "out.2", channels[0], c.InChannels, Conv3x3);
    }

    private void Resnet(string path, string ldm, long input, long output)
    {
        Add($"{path}.{LdmUnetNames.Conv1.Diffusers}", $"{ldm}.{LdmUnetNames.Conv1.Ldm}", input, output, Conv3x3);
        Add($"{path}.{LdmUnetNames.TimeEmbeddingProjection.Diffusers}", $"{ldm}.{LdmUnetNames.TimeEmbeddingProjection.Ldm}", _config.TimeEmbeddingDim, output, null);
        Add($"{path}.{LdmUnetNames.Conv2.Diffusers}", $"{ldm}.{LdmUnetNames.Conv2.Ldm}", output, output, Conv3x3);
        if (input != output)
            Add($"{path}.{LdmUnetNames.Shortcut.Diffusers}", $"{ldm}.{LdmUnetNames.Shortcut.Ldm}", input, output, Conv1x1);
    }

    // A Transformer2DModel: the same layer names in diffusers and LDM.
    private void Transformer(string path, string ldm, long channels, int depth)
    {
        var projection = _config.LinearProjection ? null : Conv1x1;
        void Both(string name, long input, long output, ConvKernel? kernel) => Add($"{path}.{name}", $"{ldm}.{name}", input, output, kernel);
        Both("proj_in", channels, channels, projection);
        for (int k = 0; k < depth; k++)
        {
            string block = $"transformer_blocks.{k}";
            foreach (var attention in new[] { "attn1", "attn2" })
            {
                long context = attention == "attn2" ? _config.CrossAttentionDim : channels;
                Both($"{block}.{attention}.to_q", channels, channels, null);
                Both($"{block}.{attention}.to_k", context, channels, null);
                Both($"{block}.{attention}.to_v", context, channels, null);
                Both($"{block}.{attention}.to_out.0", channels, channels, null);
            }
            // GEGLU: one projection to twice the inner dimension (4 x channels).
            Both($"{block}.ff.net.0.proj", channels, channels * 8, null);
            Both($"{block}.ff.net.2", channels * 4, channels, null);
        }
        Both("proj_out", channels, channels, projection);
    }

    private void Add(string diffusersPath, string ldmPath, long input, long output, ConvKernel? kernel) =>
        _modules.Add(new SdModule($"unet.{diffusersPath}", "lora_unet_" + (_kohyaUsesLdmNames ? ldmPath : diffusersPath).Replace('.', '_'), input, output, kernel));
}
