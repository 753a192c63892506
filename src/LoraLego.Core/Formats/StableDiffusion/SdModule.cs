using LoraLego.Core.Adapters;

namespace LoraLego.Core.Formats.StableDiffusion;

/// <summary>
/// One layer of a Stable Diffusion model that LoRAs adapt. <see cref="Key"/> is LoraLego's canonical
/// module key: the diffusers module path with its component in front (unet., text_encoder.,
/// text_encoder_2.), the name diffusers files use; <see cref="KohyaName"/> is the name kohya's
/// sd-scripts gives the same layer.
/// </summary>
/// <param name="InFeatures">Input features of a linear layer, input channels of a convolution.</param>
public sealed record SdModule(string Key, string KohyaName, long InFeatures, long OutFeatures, ConvKernel? Kernel)
{
    /// <summary>The in-features of the module's flattened A (in channels x kernel size for a convolution).</summary>
    public long FlatInFeatures => InFeatures * (Kernel?.Size ?? 1);

    /// <summary>Whether <paramref name="module"/> has this layer's shape.</summary>
    public bool Fits(LoraModule module) =>
        module.InFeatures == FlatInFeatures && module.OutFeatures == OutFeatures && module.Kernel == Kernel;
}
