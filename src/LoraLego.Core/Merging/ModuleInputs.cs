using TorchSharp;
using LoraLego.Core.Adapters;
using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>One adapter's factors for the module being merged, loaded as float32 on the compute device.</summary>
internal sealed record ModuleMember(string AdapterName, double Weight, double Density, double Scaling, Tensor A, Tensor B)
{
    public long Rank => A.shape[0];

    public long OutFeatures => B.shape[0];

    public long InFeatures => A.shape[1];

    /// <summary>The effective update scaling * B @ A, what PEFT's get_delta_weight returns.</summary>
    public Tensor Delta() => DeltaRows(0, OutFeatures);

    /// <summary>Rows [<paramref name="start"/>, <paramref name="end"/>) of <see cref="Delta"/>, without forming the rest.</summary>
    public Tensor DeltaRows(long start, long end)
    {
        using var scaling = Scaling.ToScalar();
        return B.narrow(0, start, end - start).matmul(A).mul_(scaling);
    }
}

/// <summary>
/// The inputs of one module's merge: only the adapters that have the module, in input order. Loaded one module at a
/// time so a merge never holds more than one module of every adapter.
/// </summary>
internal sealed class ModuleInputs : IDisposable
{
    private ModuleInputs(string key, IReadOnlyList<ModuleMember> members, bool fanInFanOut, ConvKernel? kernel)
    {
        Kernel = kernel;
        Key = key;
        Members = members;
        FanInFanOut = fanInFanOut;
    }

    public string Key { get; }

    public IReadOnlyList<ModuleMember> Members { get; }

    public bool FanInFanOut { get; }

    /// <summary>The kernel of the convolution the module adapts (the factors are flattened), null for a linear layer.</summary>
    public ConvKernel? Kernel { get; }

    public bool EqualRanks => Members.All(m => m.Rank == Members[0].Rank);

    public IReadOnlyList<Tensor> As => Members.Select(m => m.A).ToList();

    public IReadOnlyList<Tensor> Bs => Members.Select(m => m.B).ToList();

    public IReadOnlyList<double> Densities => Members.Select(m => m.Density).ToList();

    /// <param name="density">The density of inputs that name none of their own.</param>
    public static ModuleInputs Load(string key, IReadOnlyList<MergeInput> inputs, double density, Device device)
    {
        var present = Present(key, inputs);
        using var scope = NewDisposeScope();
        // Every factor of the module is converted (and moved) in one operation, not one per factor:
        // on a busy machine each libtorch call costs far more than the conversion it does.
        var raw = present.SelectMany(p => new[] { p.Module.A.Load(), p.Module.B.Load() }).ToList();
        var all = cat(raw.Select(r => r.flatten()).ToList(), 0).to(ScalarType.Float32, device);
        long offset = 0;
        Tensor Next(Tensor r)
        {
            var part = all.narrow(0, offset, r.numel()).view(r.shape).MoveToOuterDisposeScope();
            offset += r.numel();
            return part;
        }
        var members = new List<ModuleMember>();
        for (int i = 0; i < present.Count; i++)
        {
            var (input, module) = present[i];
            members.Add(new ModuleMember(input.Adapter.Name, input.Weight, input.Density ?? density, module.Scaling, Next(raw[2 * i]), Next(raw[2 * i + 1])));
        }
        var first = present.Count > 0 ? present[0].Module : null;
        return new ModuleInputs(key, members, first?.FanInFanOut ?? false, first?.Kernel);
    }

    /// <summary>The inputs that have the module <paramref name="key"/>, in input order, with their module.</summary>
    public static IReadOnlyList<(MergeInput Input, LoraModule Module)> Present(string key, IReadOnlyList<MergeInput> inputs) =>
        inputs.Select(i => (Input: i, Module: i.Adapter.GetModule(key)!)).Where(p => p.Module is not null).ToList();

    /// <summary>
    /// Refuses, before any tensor is read, a module whose adapters disagree on its shape: the headers give the
    /// shapes, so a merge fails at once rather than after hours of work.
    /// </summary>
    public static void CheckShapes(string key, IReadOnlyList<MergeInput> inputs)
    {
        LoraModule? first = null;
        string? firstName = null;
        foreach (var input in inputs)
        {
            if (input.Adapter.GetModule(key) is not { } module)
                continue;
            if (first is null)
            {
                (first, firstName) = (module, input.Adapter.Name);
                continue;
            }
            if (module.InFeatures != first.InFeatures || module.OutFeatures != first.OutFeatures)
                throw new LoraException(LoraErrorKind.ShapeMismatch, key,
                    $"adapter '{firstName}' adapts it as {first.OutFeatures}x{first.InFeatures} but '{input.Adapter.Name}' as {module.OutFeatures}x{module.InFeatures}; these adapters were trained on different base models");
            if (module.Kernel != first.Kernel)
                throw new LoraException(LoraErrorKind.ShapeMismatch, key,
                    $"adapter '{firstName}' adapts it with kernel {first.Kernel?.ToString() ?? "none (linear)"} but '{input.Adapter.Name}' with {module.Kernel?.ToString() ?? "none (linear)"}");
        }
    }

    public void Dispose()
    {
        foreach (var m in Members)
        {
            m.A.Dispose();
            m.B.Dispose();
        }
    }
}
