using LoraLego.Core.Models;
using TorchSharp.Modules;

namespace LoraLego.Core.Mixture;

/// <summary>
/// A <see cref="LoraMixture"/> plugged into a <see cref="BaseModel"/>: while it lives, the
/// model's forward passes (and <see cref="PerplexityEvaluator"/>) run the mixture. Dispose it to
/// take the mixture out; the model is then as it was. Enabling or disabling experts on the
/// mixture takes effect at the next forward pass.
/// </summary>
public sealed class MixtureAttachment : IDisposable
{
    private readonly List<(AdaptedLinear Layer, GatedLoraContribution Contribution)> _contributions = [];
    private readonly List<GateRuntime> _gates = [];
    private ExpertLikelihoods? _likelihoods;

    private MixtureAttachment(LoraMixture mixture, BaseModel model)
    {
        Mixture = mixture;
        Model = model;
    }

    public LoraMixture Mixture { get; }

    public BaseModel Model { get; }

    internal GateRecorder Recorder { get; } = new();

    internal IReadOnlyList<GateRuntime> Gates => _gates;

    /// <summary>The gates' trainable parameters on the model's device.</summary>
    internal IEnumerable<Parameter> Parameters => _gates.SelectMany(g => g.Parameters);

    internal static MixtureAttachment Create(LoraMixture mixture, BaseModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var layers = mixture.Gates.SelectMany(g => g.Modules).ToDictionary(key => key, key => LayerFor(mixture, model, key), StringComparer.Ordinal);
        CheckGateInputsComeFirst(mixture, model);
        var attachment = new MixtureAttachment(mixture, model);
        try
        {
            if (mixture.GateInput == GateInput.Likelihood)
            {
                if (model.BeforeForward is not null)
                    throw new LoraException(LoraErrorKind.InvalidArgument, mixture.Name, "another mixture is attached to this model; dispose it first");
                var likelihoods = attachment._likelihoods = new ExpertLikelihoods(model, mixture.Experts.Count);
                model.BeforeForward = likelihoods.Prepare;
            }
            foreach (var gate in mixture.Gates)
            {
                var runtime = new GateRuntime(mixture, gate, model, attachment.Recorder, attachment._likelihoods);
                attachment._gates.Add(runtime);
                foreach (var key in gate.Modules)
                {
                    var branches = mixture.Experts
                        .Select(e => e.GetModule(key) is { } module ? LoraBranch.Load(e.Name, module, model.DType.ToScalarType(), model.Device) : null)
                        .ToList();
                    var contribution = new GatedLoraContribution(mixture, runtime, key == gate.InputModule, branches);
                    attachment._contributions.Add((layers[key], contribution));
                    layers[key].Contribution = contribution;
                }
            }
        }
        catch
        {
            attachment.Dispose();
            throw;
        }
        return attachment;
    }

    private static AdaptedLinear LayerFor(LoraMixture mixture, BaseModel model, string key)
    {
        var expert = mixture.Experts.First(e => e.GetModule(key) is not null);
        var layer = model.LayerFor(expert.GetModule(key)!, expert.Path ?? expert.Name);
        if (layer.Contribution is not null)
            throw new LoraException(LoraErrorKind.InvalidArgument, mixture.Name,
                $"layer '{key}' already has a contribution (unmerged adapters or another mixture); detach them first");
        return layer;
    }

    // A layer gate's values are computed at its input module and reused by the others, so that
    // module must run first in every pass: true of the model's layer order, checked here.
    private static void CheckGateInputsComeFirst(LoraMixture mixture, BaseModel model)
    {
        var order = model.LinearLayers.Select((l, i) => (l.Key, i)).ToDictionary(p => p.Key, p => p.i, StringComparer.Ordinal);
        foreach (var gate in mixture.Gates)
            if (gate.Modules.Any(m => order[m] < order[gate.InputModule]))
                throw new LoraException(LoraErrorKind.Unsupported, mixture.Name,
                    $"gate {gate.Key} reads {gate.InputModule}, but this {model.Architecture} runs another of its modules first; use -Granularity Module");
    }

    /// <summary>Copies the gates' parameters as they are on the model's device back into the mixture.</summary>
    internal void SaveGatesToMixture()
    {
        foreach (var gate in _gates)
            gate.Gate.SetParameters(gate.Parameters);
    }

    /// <summary>Lets go of the last pass's gate values and recordings, and the autograd graph behind them.</summary>
    internal void ReleasePass()
    {
        Recorder.Clear();
        foreach (var gate in _gates)
            gate.Release();
    }

    /// <summary>Takes the mixture out of the model: the layers it set go back to no contribution.</summary>
    public void Dispose()
    {
        if (_likelihoods is not null)
        {
            Model.BeforeForward = null;
            _likelihoods.Dispose();
            _likelihoods = null;
        }
        foreach (var (layer, contribution) in _contributions)
        {
            if (ReferenceEquals(layer.Contribution, contribution))
                layer.Contribution = null;
            contribution.Dispose();
        }
        _contributions.Clear();
        foreach (var gate in _gates)
            gate.Dispose();
        _gates.Clear();
        Recorder.Dispose();
    }
}
