using System.Globalization;

namespace LoraLego.Core.Compute;

/// <summary>
/// Where tensor math runs, as the user names it: <c>Cpu</c>, <c>Cuda</c> (the first GPU), <c>Cuda:n</c> (GPU n,
/// counted from 0) or <c>Auto</c> (CUDA when TorchSharp sees a GPU). The default value is Auto.
/// </summary>
public readonly record struct ComputeDevice
{
    private ComputeDevice(ComputeDeviceKind kind, int? index)
    {
        Kind = kind;
        Index = index;
    }

    public ComputeDeviceKind Kind { get; }

    /// <summary>The GPU's number for <c>Cuda:n</c>; null for Cpu, Auto and a plain Cuda.</summary>
    public int? Index { get; }

    public static ComputeDevice Auto => default;

    public static ComputeDevice Cpu { get; } = new(ComputeDeviceKind.Cpu, null);

    public static ComputeDevice Cuda { get; } = new(ComputeDeviceKind.Cuda, null);

    public static ComputeDevice CudaAt(int index) => index >= 0
        ? new(ComputeDeviceKind.Cuda, index)
        : throw new LoraException(LoraErrorKind.InvalidArgument, $"Cuda:{index}", "is not a device: GPUs are numbered from 0");

    /// <summary>Reads Cpu, Cuda, Cuda:n or Auto, in any letter case.</summary>
    /// <exception cref="LoraException">InvalidArgument, naming the text, for anything else.</exception>
    public static ComputeDevice Parse(string text)
    {
        string name = text.Trim();
        int colon = name.IndexOf(':');
        if (colon >= 0 && name[..colon].Equals("Cuda", StringComparison.OrdinalIgnoreCase)
            && int.TryParse(name[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int index))
            return CudaAt(index);
        foreach (var kind in Enum.GetValues<ComputeDeviceKind>())
            if (name.Equals(kind.ToString(), StringComparison.OrdinalIgnoreCase))
                return new(kind, null);
        throw new LoraException(LoraErrorKind.InvalidArgument, text, "is not a device; give Cpu, Cuda (the first GPU), Cuda:<n> (GPU n, from 0) or Auto");
    }

    public override string ToString() => Index is { } index ? $"Cuda:{index}" : Kind.ToString();
}
