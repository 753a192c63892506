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

    /// <summary>
    /// Refuses a device choice other than where <paramref name="modelDevice"/> is, for work that runs through a loaded
    /// model: Auto accepts it, Cpu or Cuda must match it.
    /// </summary>
    /// <param name="what">What runs where the model is, as the error puts it, e.g. "the gates train".</param>
    /// <param name="modelPath">The model's folder, which the error names.</param>
    public static void RequireModelDevice(ComputeDevice choice, Device modelDevice, string what, string modelPath)
    {
        var wanted = choice switch
        {
            ComputeDevice.Cpu => DeviceType.CPU,
            ComputeDevice.Cuda => DeviceType.CUDA,
            _ => modelDevice.type,
        };
        if (wanted != modelDevice.type)
            throw new LoraException(LoraErrorKind.InvalidArgument, modelPath,
                $"{what} where the model is, on {modelDevice.type}, not {choice}; load the model on {choice}");
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
