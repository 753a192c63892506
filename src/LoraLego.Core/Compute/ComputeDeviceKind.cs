namespace LoraLego.Core.Compute;

/// <summary>The kinds of place tensor math can run; Auto picks CUDA when TorchSharp sees a GPU.</summary>
public enum ComputeDeviceKind
{
    Auto,
    Cpu,
    Cuda,
}
