namespace LoraLego.Core.Formats.StableDiffusion;

/// <summary>
/// The original (LDM, "sgm") names of a UNet's blocks and layers, which kohya's SDXL files use, for the
/// diffusers ones: down_blocks.i.{resnets|attentions}.j is input_blocks.{3i+j+1}.{0|1}, up_blocks.i.*.j is
/// output_blocks.{3i+j}.*, the mid block is middle_block.{0,1,2}; a down-sampler is input_blocks.{3(i+1)}.0.op,
/// an up-sampler output_blocks.{3i+2}.{1 or 2}.conv (2 after an attention).
/// </summary>
/// <remarks>Index rules hold for two layers per down block (three per up block), as every SD1.x, SD2 and SDXL UNet has.</remarks>
internal static class LdmUnetNames
{
    public static string DownResnet(int block, int layer) => $"input_blocks.{3 * block + layer + 1}.0";

    public static string DownAttention(int block, int layer) => $"input_blocks.{3 * block + layer + 1}.1";

    public static string Downsampler(int block) => $"input_blocks.{3 * (block + 1)}.0.op";

    public static string UpResnet(int block, int layer) => $"output_blocks.{3 * block + layer}.0";

    public static string UpAttention(int block, int layer) => $"output_blocks.{3 * block + layer}.1";

    public static string Upsampler(int block, bool afterAttention) => $"output_blocks.{3 * block + 2}.{(afterAttention ? 2 : 1)}.conv";

    public static string MidBlock(int index) => $"middle_block.{index}";

    /// <summary>A resnet's layers: diffusers name and LDM name.</summary>
    public static readonly (string Diffusers, string Ldm) Conv1 = ("conv1", "in_layers.2");

    public static readonly (string Diffusers, string Ldm) TimeEmbeddingProjection = ("time_emb_proj", "emb_layers.1");

    public static readonly (string Diffusers, string Ldm) Conv2 = ("conv2", "out_layers.3");

    public static readonly (string Diffusers, string Ldm) Shortcut = ("conv_shortcut", "skip_connection");
}
