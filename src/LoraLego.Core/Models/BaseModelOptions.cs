using LoraLego.Core.Compute;

namespace LoraLego.Core.Models;

/// <summary>How to hold a base model: element type and device.</summary>
public sealed record BaseModelOptions
{
    /// <summary>Float32 by default: the CPU computes it fastest and it is what parity is checked in.</summary>
    public ModelDType DType { get; init; } = ModelDType.Float32;

    public ComputeDevice Device { get; init; } = ComputeDevice.Auto;

    /// <summary>Told why a CUDA request fell back to the CPU.</summary>
    public Action<string>? Warn { get; init; }
}
