using System.Runtime.InteropServices;
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
        PreferSleepingThreads();
        torch.InitializeDeviceType(DeviceType.CPU);
        return true;
    }, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The OpenMP wait policy the process runs with once libtorch is loaded by <see cref="Load"/> (null: the runtime's default).</summary>
    public static string? OpenMpWaitPolicy { get; private set; }

    // libtorch's OpenMP threads spin between parallel regions by default. A merge makes many short libtorch calls
    // between stretches of C# work, so spinning threads take cores from that work and, on a machine whose cores are
    // busy with anything else, from each other: a 7B Lego merge took 27 s with two spinning threads on a loaded
    // 2-core machine and 5.4 s with sleeping ones (docs/benchmarks.md). The policy must be in the native
    // environment before the OpenMP runtime loads, which reads it once; a policy the user set is kept.
    private static void PreferSleepingThreads()
    {
        if (OperatingSystem.IsWindows())
            return;
        string? policy = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY");
        if (policy is null && Environment.GetEnvironmentVariable("GOMP_SPINCOUNT") is null && TrySetNative("OMP_WAIT_POLICY", "PASSIVE"))
            policy = "PASSIVE";
        OpenMpWaitPolicy = policy;
    }

    // A C library without setenv leaves the runtime's default: a slower merge, never a failure to load libtorch.
    private static bool TrySetNative(string name, string value)
    {
        try
        {
            return SetNativeVariable(name, value, overwrite: 0) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetNativeVariable(string name, string value, int overwrite);

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
