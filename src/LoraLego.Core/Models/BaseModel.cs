using LoraLego.Core.Adapters;
using LoraLego.Core.Compute;
using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>
/// A Llama-family causal language model (Llama, Mistral, Qwen2) read from a Hugging Face folder,
/// with LoRA adapters attached unmerged or merged. Weights stay in their memory-mapped files
/// until a forward pass or a merge first needs them.
/// </summary>
/// <remarks>
/// Positions are always 0..seq-1 and there is no attention mask for padding: rows of one batch
/// have the same length. Right padding is still exact for the real tokens, because a causal
/// model never lets a token see later positions. Not thread-safe: one forward pass, attach or
/// detach at a time.
/// </remarks>
public sealed class BaseModel : IDisposable
{
    private readonly ModelWeights _weights;
    private readonly LazyWeight _embeddings;
    private readonly IReadOnlyList<DecoderLayer> _layers;
    private readonly RmsNorm _finalNorm;
    private readonly AdaptedLinear _lmHead;
    private readonly RotaryEmbedding _rotary;
    private readonly Dictionary<string, AdaptedLinear> _linearByKey;
    private readonly List<AttachedAdapter> _attached = [];
    // The contributions this model built for unmerged adapters, which it therefore owns.
    private readonly Dictionary<AdaptedLinear, WeightedLoraSum> _sums = [];
    private readonly Action<string>? _warn;

    private BaseModel(string path, ModelConfig config, ModelWeights weights, ModelDType dtype, Action<string>? warn)
    {
        Path = path;
        Config = config;
        DType = dtype;
        _weights = weights;
        _warn = warn;
        long hidden = config.HiddenSize;
        _embeddings = weights.Lazy("model.embed_tokens.weight", config.VocabSize, hidden);
        _layers = Enumerable.Range(0, config.LayerCount).Select(BuildLayer).ToList();
        _finalNorm = new RmsNorm(weights.Lazy("model.norm.weight", hidden), config.RmsNormEps);
        _lmHead = config.TieWordEmbeddings
            ? new AdaptedLinear("lm_head", _embeddings, null, sharesWeight: true)
            : new AdaptedLinear("lm_head", weights.Lazy("lm_head.weight", config.VocabSize, hidden), null);
        _rotary = new RotaryEmbedding(config.Rope, config.HeadDim, weights.Device);
        LinearLayers = _layers.SelectMany(l => l.LinearLayers).Append(_lmHead).ToList();
        _linearByKey = LinearLayers.ToDictionary(l => l.Key, StringComparer.Ordinal);
    }

    /// <summary>The model folder.</summary>
    public string Path { get; }

    public ModelConfig Config { get; }

    public string Architecture => Config.Architecture;

    public ModelDType DType { get; }

    public Device Device => _weights.Device;

    /// <summary>Weight elements in the model's files.</summary>
    public long ParameterCount => _weights.ParameterCount;

    /// <summary>Weight elements read from the files so far: weights load on first use.</summary>
    public long LoadedParameterCount => _weights.LoadedParameterCount;

    /// <summary>Every linear layer adapters can target, in model order, lm_head last: the seam for per-layer contributions.</summary>
    public IReadOnlyList<AdaptedLinear> LinearLayers { get; }

    /// <summary>The weight files, for code that reads every tensor as the model has it (export, extraction).</summary>
    internal ModelWeights Weights => _weights;

    /// <summary>Attached adapters in the order they were attached.</summary>
    public IReadOnlyList<AttachedAdapter> Adapters => _attached;

    /// <summary>Opens a model folder (config.json plus model.safetensors or a sharded index), reading only headers.</summary>
    public static BaseModel Load(string path, BaseModelOptions? options = null)
    {
        options ??= new BaseModelOptions();
        string folder = System.IO.Path.GetFullPath(path);
        if (File.Exists(folder) && System.IO.Path.GetFileName(folder) == "config.json")
            folder = System.IO.Path.GetDirectoryName(folder)!;
        if (!Directory.Exists(folder))
            throw new LoraException(LoraErrorKind.NotFound, folder, "no such model folder");
        var config = ModelConfig.Read(System.IO.Path.Combine(folder, "config.json"));
        var device = DeviceSelector.Resolve(options.Device, options.Warn);
        var weights = ModelWeights.Open(folder, options.DType.ToScalarType(), device);
        try
        {
            return new BaseModel(folder, config, weights, options.DType, options.Warn);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    private DecoderLayer BuildLayer(int index)
    {
        string prefix = $"model.layers.{index}.";
        long hidden = Config.HiddenSize, intermediate = Config.IntermediateSize;
        long queryWidth = (long)Config.HeadCount * Config.HeadDim;
        long keyValueWidth = (long)Config.KeyValueHeadCount * Config.HeadDim;
        var attention = new Attention(
            Linear(prefix + "self_attn.q_proj", queryWidth, hidden, Config.QkvBias),
            Linear(prefix + "self_attn.k_proj", keyValueWidth, hidden, Config.QkvBias),
            Linear(prefix + "self_attn.v_proj", keyValueWidth, hidden, Config.QkvBias),
            Linear(prefix + "self_attn.o_proj", hidden, queryWidth, Config.OutputBias),
            Config.HeadCount, Config.KeyValueHeadCount, Config.HeadDim);
        var mlp = new SwiGluMlp(
            Linear(prefix + "mlp.gate_proj", intermediate, hidden, Config.MlpBias),
            Linear(prefix + "mlp.up_proj", intermediate, hidden, Config.MlpBias),
            Linear(prefix + "mlp.down_proj", hidden, intermediate, Config.MlpBias));
        return new DecoderLayer(
            new RmsNorm(_weights.Lazy(prefix + "input_layernorm.weight", hidden), Config.RmsNormEps),
            attention,
            new RmsNorm(_weights.Lazy(prefix + "post_attention_layernorm.weight", hidden), Config.RmsNormEps),
            mlp);
    }

    private AdaptedLinear Linear(string key, long outFeatures, long inFeatures, bool bias) =>
        new(key, _weights.Lazy(key + ".weight", outFeatures, inFeatures), bias ? _weights.Lazy(key + ".bias", outFeatures) : null);

    /// <summary>The linear layer at <paramref name="key"/> (e.g. model.layers.0.self_attn.q_proj), or null.</summary>
    public AdaptedLinear? GetLinear(string key) => _linearByKey.GetValueOrDefault(key);

    /// <summary>
    /// Attaches <paramref name="adapter"/> with <paramref name="weight"/>. Adapters add up: several
    /// unmerged ones give y = W x + sum_j w_j scaling_j B_j (A_j x); merged ones are added into W.
    /// </summary>
    /// <exception cref="LoraException">The adapter does not fit this model, or one of that name is attached.</exception>
    public void Attach(LoraAdapter adapter, double weight = 1.0, AttachMode mode = AttachMode.Unmerged)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        if (!double.IsFinite(weight))
            throw new LoraException(LoraErrorKind.InvalidArgument, adapter.Name, $"weight {weight} is not a finite number");
        if (_attached.Any(a => a.Name == adapter.Name))
            throw new LoraException(LoraErrorKind.AlreadyExists, adapter.Name, "an adapter of this name is already attached; detach it first or read it under another name");
        var targets = Targets(adapter, mode);
        var attached = new AttachedAdapter(adapter, weight, mode);
        Apply(attached, targets);
        _attached.Add(attached);
    }

    /// <summary>Detaches the adapter named <paramref name="name"/>; the others stay as they were.</summary>
    public void Detach(string name)
    {
        int index = _attached.FindIndex(a => a.Name == name);
        if (index < 0)
            throw new LoraException(LoraErrorKind.NotFound, name, $"no attached adapter of this name (attached: {string.Join(", ", _attached.Select(a => a.Name))})");
        _attached.RemoveAt(index);
        Reapply();
    }

    /// <summary>Detaches every adapter: the base weights as loaded are back in place, bit for bit.</summary>
    public void DetachAll()
    {
        _attached.Clear();
        Reapply();
    }

    // Starting again from the kept base weights rather than subtracting keeps detach exact.
    private void Reapply()
    {
        foreach (var layer in LinearLayers)
            layer.RestoreBaseWeight();
        foreach (var (layer, sum) in _sums)
        {
            layer.Contribution = null;
            sum.Dispose();
        }
        _sums.Clear();
        foreach (var attached in _attached)
            Apply(attached, Targets(attached.Adapter, attached.Mode));
    }

    /// <summary>The linear layer <paramref name="module"/> adapts, refused when the model lacks it or shapes it differently.</summary>
    /// <param name="where">The adapter's path or name, which the error names.</param>
    internal AdaptedLinear LayerFor(LoraModule module, string where)
    {
        var layer = GetLinear(module.Key)
            ?? throw new LoraException(LoraErrorKind.ShapeMismatch, where, $"module '{module.Key}' is not a linear layer of this {Architecture}");
        if (module.InFeatures != layer.InFeatures || module.OutFeatures != layer.OutFeatures)
            throw new LoraException(LoraErrorKind.ShapeMismatch, where,
                $"module '{module.Key}' maps {module.InFeatures} -> {module.OutFeatures} but the model's layer maps {layer.InFeatures} -> {layer.OutFeatures}");
        return layer;
    }

    private List<(LoraModule Module, AdaptedLinear Layer)> Targets(LoraAdapter adapter, AttachMode mode)
    {
        string where = adapter.Path ?? adapter.Name;
        var targets = new List<(LoraModule, AdaptedLinear)>(adapter.Modules.Count);
        foreach (var module in adapter.Modules)
        {
            var layer = LayerFor(module, where);
            if (mode == AttachMode.Unmerged && layer.Contribution is not null && !_sums.ContainsKey(layer))
                throw new LoraException(LoraErrorKind.InvalidArgument, where,
                    $"layer '{module.Key}' has a contribution set directly (e.g. a mixture of experts); clear it before attaching unmerged adapters");
            if (mode == AttachMode.Merged && layer.SharesWeight)
                throw new LoraException(LoraErrorKind.Unsupported, where,
                    $"module '{module.Key}' is tied to embed_tokens; merging would change the embeddings too; attach unmerged instead");
            targets.Add((module, layer));
        }
        // PEFT turns fan_in_fan_out off for nn.Linear layers, which all of these are, and uses
        // the factors as (r x in, out x r); doing the same keeps parity.
        if (adapter.Config.FanInFanOut)
            _warn?.Invoke($"{where}: fan_in_fan_out is set, but {Architecture} layers store weights as (out, in); ignored, as PEFT does for nn.Linear.");
        return targets;
    }

    private void Apply(AttachedAdapter attached, List<(LoraModule Module, AdaptedLinear Layer)> targets)
    {
        foreach (var (module, layer) in targets)
        {
            if (attached.Mode == AttachMode.Merged)
            {
                using var delta = module.Delta(Device);
                layer.Merge(delta, attached.Weight);
                continue;
            }
            if (!_sums.TryGetValue(layer, out var sum))
            {
                _sums[layer] = sum = new WeightedLoraSum();
                layer.Contribution = sum;
            }
            sum.Add(LoraBranch.Load(attached.Name, module, DType.ToScalarType(), Device), attached.Weight);
        }
    }

    /// <summary>
    /// The forward pass: int64 token ids [batch, seq] to float32 logits [batch, seq, vocab] on
    /// the model's device, which the caller owns.
    /// </summary>
    /// <param name="inputIds">[batch, seq] token ids.</param>
    /// <param name="promptLengths">Per row, how many of its first tokens are its prompt (0: none known), for
    /// mixture gates that decide from the prompt; null when no row has one.</param>
    public Tensor Forward(Tensor inputIds, IReadOnlyList<int>? promptLengths = null)
    {
        using var noGrad = no_grad();
        return ForwardPass(inputIds, promptLengths);
    }

    /// <summary>
    /// The forward pass with autograd recording, for training parameters that live outside the
    /// model (a mixture's gates). The model's weights and its adapters' factors never require
    /// gradients, so they stay frozen; only what a contribution adds with requires_grad learns.
    /// </summary>
    internal Tensor ForwardRecordingGradients(Tensor inputIds, IReadOnlyList<int>? promptLengths = null)
    {
        using var grad = enable_grad();
        return ForwardPass(inputIds, promptLengths);
    }

    /// <summary>
    /// The prompt lengths given to the forward pass under way (null outside one, or when none were
    /// given): contributions see only their layer's input, and a gate that decides from the prompt
    /// needs to know where each row's prompt ends.
    /// </summary>
    internal IReadOnlyList<int>? PromptLengths { get; private set; }

    /// <summary>
    /// Called with the input ids at the start of every forward pass, before any layer runs: a
    /// contribution that needs a look at the whole pass first (a mixture whose gates read the
    /// experts' likelihoods) sets it while attached. It may run forward passes of its own.
    /// </summary>
    internal Action<Tensor>? BeforeForward { get; set; }

    private Tensor ForwardPass(Tensor inputIds, IReadOnlyList<int>? promptLengths)
    {
        CheckInputShape(inputIds);
        if (promptLengths is not null && promptLengths.Count != inputIds.shape[0])
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"{promptLengths.Count} prompt lengths for {inputIds.shape[0]} rows");
        BeforeForward?.Invoke(inputIds);
        // Set after BeforeForward, whose own passes (a likelihood mixture's) have no prompts.
        PromptLengths = promptLengths;
        try
        {
            return LayersForward(inputIds);
        }
        finally
        {
            PromptLengths = null;
        }
    }

    private Tensor LayersForward(Tensor inputIds)
    {
        using var scope = NewDisposeScope();
        long batch = inputIds.shape[0], length = inputIds.shape[1];
        var ids = inputIds.to(ScalarType.Int64, Device);
        CheckVocabularyRange(ids);
        var hidden = _embeddings.Value.index_select(0, ids.flatten()).view(batch, length, Config.HiddenSize);
        var (cos, sin) = _rotary.Angles(length, DType.ToScalarType());
        var mask = AttentionMask.Causal(length, Config.SlidingWindow, DType.ToScalarType(), Device);
        foreach (var layer in _layers)
        {
            var next = layer.Forward(hidden, cos, sin, mask);
            // Freed as we go, so activations cost one layer's worth rather than all of them.
            hidden.Dispose();
            hidden = next;
        }
        var logits = _lmHead.Forward(_finalNorm.Forward(hidden));
        return logits.to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>Runs rows of token ids, all the same length, and copies the logits out.</summary>
    public LogitsResult Run(long[][] inputIds)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.Length == 0 || inputIds.Any(r => r is null || r.Length != inputIds[0].Length))
            throw new LoraException(LoraErrorKind.InvalidArgument, null, "input ids must be one or more rows of the same length (no padding)");
        using var ids = tensor(inputIds.SelectMany(r => r).ToArray(), [inputIds.Length, inputIds[0].Length]);
        using var logits = Forward(ids);
        return LogitsResult.FromTensor(logits);
    }

    private static void CheckInputShape(Tensor inputIds)
    {
        if (inputIds.dim() != 2 || inputIds.shape[0] == 0 || inputIds.shape[1] == 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"input ids must be [batch, seq] with both at least 1, not [{string.Join(", ", inputIds.shape)}]");
        if (inputIds.is_floating_point() || inputIds.is_complex() || inputIds.dtype == ScalarType.Bool)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"input ids must be integers, not {inputIds.dtype}");
    }

    // An id past the vocabulary would make index_select fail natively with an unhelpful message.
    private void CheckVocabularyRange(Tensor ids)
    {
        long min = ids.min().item<long>(), max = ids.max().item<long>();
        if (min < 0 || max >= Config.VocabSize)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, $"token ids span {min}..{max}, outside the vocabulary 0..{Config.VocabSize - 1}");
    }

    public override string ToString() =>
        $"{Architecture} {Config.LayerCount} layers, hidden {Config.HiddenSize}, {DType} on {Device.type}";

    public void Dispose()
    {
        foreach (var sum in _sums.Values)
            sum.Dispose();
        _sums.Clear();
        foreach (var layer in _layers)
            layer.Dispose();
        _finalNorm.Dispose();
        _lmHead.Dispose();
        _embeddings.Dispose();
        _rotary.Dispose();
        _weights.Dispose();
    }
}
