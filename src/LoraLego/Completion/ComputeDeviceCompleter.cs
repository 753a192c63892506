using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using LoraLego.Core.Compute;

namespace LoraLego.Completion;

/// <summary>
/// Completes -Device with Auto, Cpu and Cuda, and Cuda:0, Cuda:1, ... for the GPUs TorchSharp sees (none on a
/// CPU-only machine). The values bind through <see cref="ComputeDevice.Parse"/>, which PowerShell calls itself.
/// </summary>
public sealed class ComputeDeviceCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        var pattern = WildcardPattern.Get(wordToComplete.Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
        var devices = new[] { ComputeDevice.Auto, ComputeDevice.Cpu, ComputeDevice.Cuda }
            .Concat(Enumerable.Range(0, TorchRuntime.CudaDeviceCount).Select(ComputeDevice.CudaAt));
        return devices.Select(d => d.ToString()).Where(pattern.IsMatch)
            .Select(name => new CompletionResult(name, name, CompletionResultType.ParameterValue, name));
    }
}
