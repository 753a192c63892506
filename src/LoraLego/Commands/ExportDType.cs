using LoraLego.Core.Formats;

namespace LoraLego.Commands;

/// <summary>The element types Export-Lora can write; Keep leaves each tensor as it is.</summary>
public enum ExportDType
{
    Keep,
    Float32,
    Float16,
    BFloat16,
}

internal static class ExportDTypes
{
    public static SafetensorsDType? ToSafetensors(this ExportDType d) => d switch
    {
        ExportDType.Float32 => SafetensorsDType.F32,
        ExportDType.Float16 => SafetensorsDType.F16,
        ExportDType.BFloat16 => SafetensorsDType.BF16,
        _ => null,
    };
}
