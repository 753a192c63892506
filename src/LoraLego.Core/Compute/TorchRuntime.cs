using TorchSharp;

namespace LoraLego.Core.Compute;

/// <summary>
/// Loads libtorch once per process and probes the GPUs once. TorchSharp's own loader checks and sets
/// unsynchronised flags, so two runspaces of <c>ForEach-Object -Parallel</c> touching torch first at the
/// same moment could both run it; everything here goes through one thread-safe initialisation instead.
/// </summary>
public static class TorchRuntime
{
    private static readonly Lazy<bool> Loaded = new(() =>
    {
        torch.InitializeDeviceType(DeviceType.CPU);
        return true;
    }, LazyThreadSafetyMode.ExecutionAndPublication);

    private static readonly Lazy<int> CudaDevices = new(CountCudaDevices, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Loads the native libraries (a no-op after the first call, from any thread).</summary>
    public static void Load() => _ = Loaded.Value;

    /// <summary>How many CUDA devices TorchSharp sees; 0 with a CPU libtorch or no GPU.</summary>
    public static int CudaDeviceCount => CudaDevices.Value;

    private static int CountCudaDevices()
    {
        try
        {
            Load();
            return torch.cuda.is_available() ? torch.cuda.device_count() : 0;
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException)
        {
            return 0;
        }
    }
}
