using LoraLego.Core.Compute;

namespace LoraLego.Core.Tests.Kernels;

/// <summary>A fact about the 512-bit panel, skipped (and reported as skipped) on cores without AVX-512.</summary>
public sealed class WidePanelFactAttribute : FactAttribute
{
    public WidePanelFactAttribute()
    {
        if (!FloatPanel.Wide)
            Skip = "this core has no 512-bit vectors (AVX-512F), so only the 256-bit panel runs here";
    }
}
