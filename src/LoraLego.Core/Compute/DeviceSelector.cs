using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Core.Compute;

/// <summary>Turns the user's device choice into a torch device, falling back to the CPU with a reason.</summary>
public static class DeviceSelector
{
    /// <param name="warn">Told why a CUDA request fell back to the CPU.</param>
    public static Device Resolve(ComputeDevice choice, Action<string>? warn = null)
    {
        if (choice == ComputeDevice.Cpu)
            return CPU;
        bool available = CudaAvailable();
        if (available)
            return CUDA;
        if (choice == ComputeDevice.Cuda)
            warn?.Invoke("CUDA was requested but TorchSharp sees no CUDA device (a CPU libtorch, or no GPU); running on the CPU.");
        return CPU;
    }

    public static bool CudaAvailable()
    {
        try
        {
            return cuda.is_available();
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException)
        {
            return false;
        }
    }
}
