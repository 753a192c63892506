using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>The element type a base model's weights are held and computed in.</summary>
public enum ModelDType
{
    Float32,
    BFloat16,
    Float16,
}

internal static class ModelDTypes
{
    public static ScalarType ToScalarType(this ModelDType dtype) => dtype switch
    {
        ModelDType.Float32 => ScalarType.Float32,
        ModelDType.BFloat16 => ScalarType.BFloat16,
        ModelDType.Float16 => ScalarType.Float16,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };
}
