using TorchSharp;
using LoraLego.Core.Formats;
using static TorchSharp.torch;

namespace LoraLego.Core.Adapters;

/// <summary>
/// One adapted linear layer: A (rank x in) and B (out x rank), whose update is
/// scaling * B @ A with scaling alpha/rank, or alpha/sqrt(rank) under rsLoRA.
/// </summary>
public sealed class LoraModule
{
    public LoraModule(string key, int rank, double alpha, bool useRsLora, LoraTensor a, LoraTensor b, bool fanInFanOut = false)
    {
        if (a.Shape.Length != 2 || b.Shape.Length != 2)
            throw new LoraException(LoraErrorKind.ShapeMismatch, key, $"lora_A {a} and lora_B {b} must be matrices");
        if (a.Shape[0] != b.Shape[1])
            throw new LoraException(LoraErrorKind.ShapeMismatch, key, $"lora_A {a} and lora_B {b} disagree on the rank ({a.Shape[0]} vs {b.Shape[1]})");
        if (a.Shape[0] != rank)
            throw new LoraException(LoraErrorKind.ShapeMismatch, key, $"the config gives rank {rank} but the tensors have rank {a.Shape[0]}");
        Key = key;
        Rank = rank;
        Alpha = alpha;
        UseRsLora = useRsLora;
        A = a;
        B = b;
        FanInFanOut = fanInFanOut;
    }

    /// <summary>The module's path in the base model, e.g. model.layers.0.self_attn.q_proj.</summary>
    public string Key { get; }

    public int Rank { get; }

    public double Alpha { get; }

    public bool UseRsLora { get; }

    public double Scaling => UseRsLora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank;

    public long InFeatures => A.Shape[1];

    public long OutFeatures => B.Shape[0];

    public LoraTensor A { get; }

    public LoraTensor B { get; }

    /// <summary>The base layer stores its weight as (in, out); the update is transposed to match it.</summary>
    public bool FanInFanOut { get; }

    public long ParameterCount => A.ElementCount + B.ElementCount;

    /// <summary>The kernel of the convolution the module adapts (A and B are held flattened), null for a linear layer.</summary>
    public ConvKernel? Kernel { get; init; }

    /// <summary>
    /// The dtype of the module's alpha in the file it came from, for files that store alpha as a tensor per
    /// module (kohya), so a re-export writes it as it was; null when the file stored none, or for a computed module.
    /// </summary>
    public SafetensorsDType? AlphaDType { get; init; }

    /// <summary>Builds a module with the given scaling expressed as plain-LoRA alpha (alpha = scaling * rank).</summary>
    /// <param name="storeAs">The dtype the factors are kept in; null keeps the tensors' own. Merges of
    /// half-precision adapters keep half precision, as PEFT does, which also halves their memory.</param>
    /// <param name="kernel">The convolution kernel of the layer, for factors of a convolution held flattened.</param>
    public static LoraModule FromFactors(string key, Tensor a, Tensor b, double scaling, bool fanInFanOut = false, SafetensorsDType? storeAs = null, ConvKernel? kernel = null)
    {
        using var storedA = storeAs is { } d ? a.to_type(d.ToScalarType()) : a.alias();
        using var storedB = storeAs is { } e ? b.to_type(e.ToScalarType()) : b.alias();
        return Build(key, storedA, storedB, scaling, fanInFanOut, kernel, LoraTensor.FromTensor);
    }

    /// <summary>
    /// Like <see cref="FromFactors"/> for factors already computed in the dtype to keep, contiguous on the CPU: the
    /// module takes <paramref name="a"/> and <paramref name="b"/> over instead of copying them.
    /// </summary>
    internal static LoraModule Adopt(string key, Tensor a, Tensor b, double scaling, bool fanInFanOut, ConvKernel? kernel) =>
        Build(key, a, b, scaling, fanInFanOut, kernel, LoraTensor.Adopt);

    private static LoraModule Build(string key, Tensor a, Tensor b, double scaling, bool fanInFanOut, ConvKernel? kernel, Func<string, Tensor, LoraTensor> keep)
    {
        int rank = (int)a.shape[0];
        return new LoraModule(key, rank, scaling * rank, false, keep($"{key}.lora_A.weight", a), keep($"{key}.lora_B.weight", b), fanInFanOut) { Kernel = kernel };
    }

    /// <summary>The effective update scaling * B @ A, float32, shaped (out, in).</summary>
    public Tensor Delta(Device? device = null)
    {
        using var scope = NewDisposeScope();
        var a = A.LoadFloat32(device);
        var b = B.LoadFloat32(device);
        using var scaling = Scaling.ToScalar();
        return b.matmul(a).mul_(scaling).MoveToOuterDisposeScope();
    }

    public override string ToString() => $"{Key} r{Rank} {OutFeatures}x{InFeatures}{(Kernel is null ? "" : $" conv {Kernel}")}";
}
