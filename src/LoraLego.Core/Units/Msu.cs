using LoraLego.Core.Adapters;

namespace LoraLego.Core.Units;

/// <summary>
/// A Minimal Semantic Unit (LoRA-LEGO, arXiv 2409.16167, Section 3): rank <see cref="Index"/> of one
/// module of one adapter, the pair (A[i,:], B[:,i]). Its update is
/// <see cref="Scaling"/> * B[:,i] A[i,:]^T, and a module's update is the sum of its units' updates.
/// </summary>
/// <remarks>
/// <see cref="A"/> and <see cref="B"/> are the factors as stored (sign-flipped when
/// <see cref="SignFlipped"/>); <see cref="Scaling"/> carries the module's LoRA scaling (alpha/r,
/// or alpha/sqrt(r) under rsLoRA) times the user's weight, so units of different adapters can be
/// compared and summed without their configs.
/// </remarks>
public sealed class Msu
{
    public Msu(string adapter, string moduleKey, int index, float[] a, float[] b, double scaling, int sourceRank, bool fanInFanOut = false, bool signFlipped = false)
        : this(adapter, moduleKey, index, a.Length, b.Length, new Lazy<(float[], float[])>((a, b)), scaling, sourceRank, fanInFanOut, signFlipped)
    {
    }

    /// <summary>A unit whose factors are read only when first asked for: a merge clusters whole modules as
    /// tensors, and the units it reports are taken apart only if someone looks at them.</summary>
    internal Msu(string adapter, string moduleKey, int index, int inFeatures, int outFeatures, Lazy<(float[] A, float[] B)> factors,
        double scaling, int sourceRank, bool fanInFanOut, bool signFlipped)
    {
        Adapter = adapter;
        ModuleKey = moduleKey;
        Index = index;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        _factors = factors;
        Scaling = scaling;
        SourceRank = sourceRank;
        FanInFanOut = fanInFanOut;
        SignFlipped = signFlipped;
        _norm = new Lazy<double>(() => Math.Abs(scaling) * L2(A) * L2(B));
    }

    private readonly Lazy<(float[] A, float[] B)> _factors;
    private readonly Lazy<double> _norm;

    /// <summary>The name of the adapter the unit came from.</summary>
    public string Adapter { get; }

    /// <summary>
    /// The config of the adapter the unit came from (null for a unit built by hand): what is joined
    /// or merged from units keeps its base model, task type and other fields.
    /// </summary>
    public AdapterConfig? AdapterConfig { get; init; }

    /// <summary>The module path, e.g. model.layers.0.self_attn.q_proj.</summary>
    public string ModuleKey { get; }

    /// <summary>The rank index inside the source module.</summary>
    public int Index { get; }

    /// <summary>Row <see cref="Index"/> of lora_A (length in_features).</summary>
    public float[] A => _factors.Value.A;

    /// <summary>Column <see cref="Index"/> of lora_B (length out_features).</summary>
    public float[] B => _factors.Value.B;

    /// <summary>The source module's LoRA scaling times the user's weight for its adapter.</summary>
    public double Scaling { get; }

    /// <summary>The rank of the module the unit came from (the output reweighting compares ranks).</summary>
    public int SourceRank { get; }

    /// <summary>Whether the source module stored its base weight as (in, out).</summary>
    public bool FanInFanOut { get; }

    /// <summary>The kernel of the convolution the source module adapts (A is a row of its flattened down factor), null for a linear layer.</summary>
    public ConvKernel? Kernel { get; init; }

    /// <summary>True when A and B were both negated by sign canonicalisation; the update is unchanged.</summary>
    public bool SignFlipped { get; }

    /// <summary>Frobenius norm of the unit's update, |Scaling| * |A| * |B|: how much the unit changes the layer.</summary>
    public double Norm => _norm.Value;

    public int InFeatures { get; }

    public int OutFeatures { get; }

    /// <summary>
    /// sqrt(|Scaling|) * A: the scaling split evenly between the two parts (ALGORITHMS.md, LoRA-LEGO
    /// step 1) so that neither side dominates a distance between units.
    /// </summary>
    public double[] FoldedA() => Scaled(A, AFactor);

    /// <summary>sign(Scaling) * sqrt(|Scaling|) * B, so that FoldedB FoldedA^T is the unit's update.</summary>
    public double[] FoldedB() => Scaled(B, BFactor);

    /// <summary>[FoldedB; FoldedA] in one array: the unit as a point to cluster.</summary>
    public double[] Folded()
    {
        var folded = new double[OutFeatures + InFeatures];
        ScaleInto(B, BFactor, folded.AsSpan(0, OutFeatures));
        ScaleInto(A, AFactor, folded.AsSpan(OutFeatures));
        return folded;
    }

    /// <summary>The factor <see cref="FoldedA"/> scales A by.</summary>
    internal double AFactor => Math.Sqrt(Math.Abs(Scaling));

    /// <summary>The factor <see cref="FoldedB"/> scales B by.</summary>
    internal double BFactor => Math.Sign(Scaling) * AFactor;

    private static double[] Scaled(float[] values, double factor)
    {
        var scaled = new double[values.Length];
        ScaleInto(values, factor, scaled);
        return scaled;
    }

    private static void ScaleInto(float[] values, double factor, Span<double> destination)
    {
        for (int i = 0; i < values.Length; i++)
            destination[i] = factor * values[i];
    }

    /// <summary>The same unit with A and B negated: the update is unchanged.</summary>
    public Msu Negated() => new(Adapter, ModuleKey, Index, InFeatures, OutFeatures,
        new Lazy<(float[], float[])>(() => (Array.ConvertAll(A, x => -x), Array.ConvertAll(B, x => -x))), Scaling, SourceRank, FanInFanOut, !SignFlipped)
    {
        AdapterConfig = AdapterConfig,
        Kernel = Kernel,
    };

    public override string ToString() => $"{Adapter}:{ModuleKey}[{Index}] norm {Norm:G4}";

    private static double L2(float[] v)
    {
        double sum = 0;
        foreach (float x in v)
            sum += (double)x * x;
        return Math.Sqrt(sum);
    }
}
