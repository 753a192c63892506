using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Core.Compute;

/// <summary>Turns the user's device choice into a torch device, falling back to the CPU with a reason.</summary>
public static class DeviceSelector
{
    /// <param name="warn">Told why a CUDA request fell back to the CPU.</param>
    /// <exception cref="LoraException">InvalidArgument for <c>Cuda:n</c> past the GPUs present.</exception>
    public static Device Resolve(ComputeDevice choice, Action<string>? warn = null)
    {
        TorchRuntime.Load();
        if (choice.Kind == ComputeDeviceKind.Cpu)
            return CPU;
        int gpus = TorchRuntime.CudaDeviceCount;
        if (gpus == 0)
        {
            // Cuda:n falls back like Cuda, so a script written for a GPU machine still runs (slower) on a laptop.
            if (choice.Kind == ComputeDeviceKind.Cuda)
                warn?.Invoke($"{choice} was requested but TorchSharp sees no CUDA device (a CPU libtorch, or no GPU); running on the CPU.");
            return CPU;
        }
        int index = choice.Index ?? 0;
        if (index >= gpus)
            throw new LoraException(LoraErrorKind.InvalidArgument, choice.ToString(),
                $"is not a GPU of this machine: TorchSharp sees {gpus} CUDA device{(gpus == 1 ? "" : "s")}, Cuda:0 to Cuda:{gpus - 1}");
        return new Device(DeviceType.CUDA, index);
    }

    /// <summary>
    /// Refuses a device choice other than where <paramref name="modelDevice"/> is, for work that runs through a loaded
    /// model: Auto accepts it, Cpu, Cuda or Cuda:n must match it (Cuda any GPU, Cuda:n that one).
    /// </summary>
    /// <param name="what">What runs where the model is, as the error puts it, e.g. "the gates train".</param>
    /// <param name="modelPath">The model's folder, which the error names.</param>
    public static void RequireModelDevice(ComputeDevice choice, Device modelDevice, string what, string modelPath)
    {
        bool matches = choice.Kind switch
        {
            ComputeDeviceKind.Cpu => modelDevice.type == DeviceType.CPU,
            ComputeDeviceKind.Cuda => modelDevice.type == DeviceType.CUDA && (choice.Index is not { } index || index == Math.Max(0, modelDevice.index)),
            _ => true,
        };
        if (!matches)
            throw new LoraException(LoraErrorKind.InvalidArgument, modelPath,
                $"{what} where the model is, on {Describe(modelDevice)}, not {choice}; load the model on {choice}");
    }

    public static bool CudaAvailable() => TorchRuntime.CudaDeviceCount > 0;

    private static string Describe(Device device) => device.type == DeviceType.CUDA ? $"Cuda:{Math.Max(0, device.index)}" : device.type.ToString();
}
