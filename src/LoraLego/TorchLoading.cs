using System.Management.Automation;
using LoraLego.Core.Compute;

namespace LoraLego;

/// <summary>
/// Loads libtorch while the module imports. Runspaces of <c>ForEach-Object -Parallel</c> or thread jobs each
/// import the module into the same process; loading here, once and under a lock, means no two of them can
/// start TorchSharp's unsynchronised native loader at the same moment from their first tensor.
/// </summary>
public sealed class TorchLoading : IModuleAssemblyInitializer
{
    public void OnImport()
    {
        try
        {
            TorchRuntime.Load();
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException)
        {
            // Importing still succeeds: the first command that needs torch rethrows this failure as its error,
            // and the commands that only read headers work without libtorch.
        }
    }
}
