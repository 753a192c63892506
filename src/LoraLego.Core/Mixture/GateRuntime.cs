using LoraLego.Core.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraLego.Core.Mixture;

/// <summary>
/// A gate at work inside one model: its parameters on the model's device (trainable), and the
/// gate values of the current forward pass, which its input module computes and the gate's
/// other modules reuse.
/// </summary>
internal sealed class GateRuntime : IDisposable
{
    private const double NormEpsilon = 1e-5;

    private readonly LoraMixture _mixture;
    private readonly BaseModel _model;
    private readonly ExpertLikelihoods? _likelihoods;
    private Tensor? _current;

    /// <param name="likelihoods">The per-expert evidence, for a mixture whose gates read <see cref="GateInput.Likelihood"/>.</param>
    public GateRuntime(LoraMixture mixture, MixtureGate gate, BaseModel model, GateRecorder recorder, ExpertLikelihoods? likelihoods)
    {
        _mixture = mixture;
        _model = model;
        _likelihoods = likelihoods;
        Gate = gate;
        Recorder = recorder;
        Parameters = gate.Parameters().Select(p => new Parameter(p.Value.to(model.Device, copy: true), requires_grad: true)).ToList();
    }

    public MixtureGate Gate { get; }

    public GateRecorder Recorder { get; }

    /// <summary>The gate's learned tensors on the model's device, in <see cref="MixtureGate.Parameters"/> order.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    private Parameter Weight => Parameters[0];

    private Parameter LogTemperature => Parameters[1];

    private Parameter Query => Parameters[2];

    /// <summary>Which experts this pass runs: the enabled ones, or the one expert a likelihood pass measures.</summary>
    public bool[] ActiveExperts() =>
        _likelihoods?.ForcedExpert is int forced
            ? _mixture.Experts.Select((_, i) => i == forced).ToArray()
            : _mixture.EnabledMask();

    /// <summary>
    /// Computes this pass's gate values, from the input module's input, the experts' outputs
    /// there, or the experts' likelihoods (as the mixture's <see cref="LoraMixture.GateInput"/>
    /// says), and keeps them for the gate's other modules.
    /// </summary>
    /// <param name="input">The input module's input, [batch, seq, in].</param>
    /// <param name="expertOutputs">Per expert, [batch, seq, out] or null where an expert does not adapt the module.</param>
    /// <returns>[batch, seq, experts] float32; disabled experts get exactly 0.</returns>
    public Tensor Evaluate(Tensor input, IReadOnlyList<Tensor?> expertOutputs)
    {
        if (_likelihoods?.ForcedExpert is int forced)
        {
            var alone = nn.functional.one_hot(full(input.shape[..^1], forced, ScalarType.Int64, input.device), _mixture.Experts.Count).to(ScalarType.Float32);
            Keep(alone);
            return alone;
        }
        var features = GateFeatures(input, expertOutputs);
        var logits = nn.functional.linear(features, Weight).div(LogTemperature.exp());
        var disabled = tensor(_mixture.EnabledMask().Select(enabled => !enabled).ToArray(), device: features.device);
        using var minusInfinity = double.NegativeInfinity.ToScalar();
        var values = logits.masked_fill(disabled, minusInfinity).softmax(-1);
        Keep(values);
        Recorder.Record(Gate, values);
        return values;
    }

    // The likelihoods are already sums over the row so far, and their size is the evidence, so
    // they are used as they are; states and outputs are averaged over the row so far and normalised.
    private Tensor GateFeatures(Tensor input, IReadOnlyList<Tensor?> expertOutputs)
    {
        if (_mixture.GateInput == GateInput.Likelihood)
            return _likelihoods?.Features ?? throw new InvalidOperationException($"gate {Gate.Key}: no expert likelihoods for this pass");
        if (_mixture.GateInput == GateInput.Prompt)
            return PromptPool.Features(input.to(ScalarType.Float32), Query, _model.PromptLengths);
        var joined = _mixture.GateInput == GateInput.HiddenState ? input.to(ScalarType.Float32) : JoinOutputs(expertOutputs);
        long length = joined.shape[^2];
        var positions = arange(1, length + 1, ScalarType.Float32, joined.device).unsqueeze(-1);
        var runningMean = joined.cumsum(-2).div(positions);
        return nn.functional.layer_norm(runningMean, [joined.shape[^1]], eps: NormEpsilon);
    }

    /// <summary>This pass's gate values, as computed at the input module.</summary>
    public Tensor Current(Tensor input) =>
        _current is { } values && values.shape[..^1].SequenceEqual(input.shape[..^1])
            ? values
            : throw new InvalidOperationException($"gate {Gate.Key}: module reached before {Gate.InputModule} in this forward pass");

    // The values outlive the dispose scope of the module that computed them: later modules of the
    // layer run after that scope has ended.
    private void Keep(Tensor values)
    {
        var kept = values.alias();
        kept.DetachFromDisposeScope();
        _current?.Dispose();
        _current = kept;
    }

    /// <summary>Lets go of the last pass's values (and, while training, the graph behind them).</summary>
    public void Release()
    {
        _current?.Dispose();
        _current = null;
    }

    private static Tensor JoinOutputs(IReadOnlyList<Tensor?> expertOutputs)
    {
        var template = expertOutputs.First(o => o is not null)!;
        return cat(expertOutputs.Select(o => o?.to(ScalarType.Float32) ?? zeros_like(template, ScalarType.Float32)).ToList(), -1);
    }

    public void Dispose()
    {
        Release();
        foreach (var parameter in Parameters)
            parameter.Dispose();
    }
}
