using LoraLego.Core.Adapters;
using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>
/// One adapter's factors for one layer, held on the model's device in its dtype so a forward
/// pass does not re-read them: computes weight * scaling * B (A x), as PEFT's unmerged LoRA does.
/// </summary>
public sealed class LoraBranch : IDisposable
{
    private readonly Tensor _a;
    private readonly Tensor _b;

    private LoraBranch(string adapterName, LoraModule module, Tensor a, Tensor b)
    {
        AdapterName = adapterName;
        Module = module;
        _a = a;
        _b = b;
    }

    /// <summary>The adapter the factors come from.</summary>
    public string AdapterName { get; }

    public LoraModule Module { get; }

    /// <summary>Loads <paramref name="module"/>'s factors for a model holding <paramref name="dtype"/> on <paramref name="device"/>.</summary>
    public static LoraBranch Load(string adapterName, LoraModule module, ScalarType dtype, Device device)
    {
        using var a = module.A.Load();
        using var b = module.B.Load();
        var onDeviceA = a.to(dtype, device, copy: true);
        var onDeviceB = b.to(dtype, device, copy: true);
        onDeviceA.DetachFromDisposeScope();
        onDeviceB.DetachFromDisposeScope();
        return new LoraBranch(adapterName, module, onDeviceA, onDeviceB);
    }

    /// <param name="input">[..., in_features].</param>
    /// <param name="weight">The user's weight for this adapter, folded into the scaling.</param>
    /// <returns>weight * scaling * B (A x), [..., out_features].</returns>
    public Tensor Forward(Tensor input, double weight = 1.0)
    {
        using var down = nn.functional.linear(input, _a);
        return nn.functional.linear(down, _b).mul_(weight * Module.Scaling);
    }

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
    }
}
