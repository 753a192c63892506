namespace LoraLego.Core.Compute;

/// <summary>Where tensor math runs; Auto picks CUDA when TorchSharp sees a GPU.</summary>
public enum ComputeDevice
{
    Auto,
    Cpu,
    Cuda,
}
