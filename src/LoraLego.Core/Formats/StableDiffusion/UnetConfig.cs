namespace LoraLego.Core.Formats.StableDiffusion;

/// <summary>
/// The fields of a diffusers UNet2DConditionModel config that decide its layers' names and shapes
/// (down blocks in order; up blocks mirror them).
/// </summary>
/// <param name="CrossAttention">Per down block, whether it is a CrossAttnDownBlock2D (else a DownBlock2D).</param>
/// <param name="TransformerDepth">Per down block, transformer_layers_per_block; the mid block takes the last.</param>
/// <param name="LinearProjection">use_linear_projection: proj_in and proj_out are linear layers, else 1x1 convolutions.</param>
/// <param name="AdditionEmbedding">The in-features of add_embedding (SDXL's text_time embedding), null when there is none.</param>
public sealed record UnetConfig(
    long InChannels,
    long[] BlockOutChannels,
    bool[] CrossAttention,
    int[] TransformerDepth,
    int LayersPerBlock,
    long CrossAttentionDim,
    bool LinearProjection,
    long? AdditionEmbedding)
{
    /// <summary>Stable Diffusion 1.x (runwayml/stable-diffusion-v1-5's unet/config.json).</summary>
    public static UnetConfig Sd15 { get; } = new(4, [320, 640, 1280, 1280], [true, true, true, false], [1, 1, 1, 1], 2, 768, false, null);

    /// <summary>Stable Diffusion XL base (stabilityai/stable-diffusion-xl-base-1.0's unet/config.json).</summary>
    public static UnetConfig Sdxl { get; } = new(4, [320, 640, 1280], [false, true, true], [1, 2, 10], 2, 2048, true, 2816);

    /// <summary>time_embed_dim: four times the first block's channels.</summary>
    public long TimeEmbeddingDim => BlockOutChannels[0] * 4;
}
