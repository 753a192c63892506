using System.Text.RegularExpressions;
using LoraLego.Core.Adapters;
using LoraLego.Core.Models;

namespace LoraLego.Core.Mixture;

/// <summary>
/// A mixture of LoRA experts (MoLE, arXiv 2404.13628): the adapters stay separate, and learned
/// gates weigh their outputs per token, y = W x + sum_i g_i(x) E_i(x) at every adapted layer.
/// Holds the experts, the gates' parameters and which experts are enabled; attach it to a
/// <see cref="BaseModel"/> with <see cref="AttachTo"/> to run, evaluate or train it.
/// </summary>
public sealed partial class LoraMixture : IDisposable
{
    // Forward order of a Llama-family block: a layer gate reads the first adapted module a pass reaches.
    private static readonly string[] ForwardOrder = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    // The one gate of a Model-granularity mixture: its tensors are model.weight, model.query, ...
    private const string ModelGateKey = "model";

    private readonly HashSet<string> _disabled = new(StringComparer.Ordinal);

    private LoraMixture(string name, IReadOnlyList<LoraAdapter> experts, MixtureGranularity granularity, double temperature, GateInput gateInput, IReadOnlyList<MixtureGate> gates)
    {
        Name = name;
        GateInput = gateInput;
        Experts = experts;
        Granularity = granularity;
        Temperature = temperature;
        Gates = gates;
    }

    public string Name { get; }

    /// <summary>The experts, in gate order: gate value i weighs Experts[i].</summary>
    public IReadOnlyList<LoraAdapter> Experts { get; }

    public IReadOnlyList<string> ExpertNames => Experts.Select(e => e.Name).ToList();

    public MixtureGranularity Granularity { get; }

    /// <summary>What the gates read: the prompt's pooled hidden state, the experts' outputs (MoLE's design), the hidden state or the experts' likelihoods.</summary>
    public GateInput GateInput { get; }

    /// <summary>The temperature the gates started with; each gate learns its own (<see cref="MixtureGate.Temperature"/>).</summary>
    public double Temperature { get; }

    public IReadOnlyList<MixtureGate> Gates { get; }

    /// <summary>Experts whose gate logits are masked to -infinity, so the others' values renormalise.</summary>
    public IReadOnlyList<string> DisabledExperts => Experts.Where(e => _disabled.Contains(e.Name)).Select(e => e.Name).ToList();

    public IReadOnlyList<string> EnabledExperts => Experts.Where(e => !_disabled.Contains(e.Name)).Select(e => e.Name).ToList();

    /// <summary>The last gate training, or null while the gates are untrained.</summary>
    public MixtureTrainingSummary? Training { get; internal set; }

    /// <summary>The total loss of every step of the last training; empty while untrained.</summary>
    public IReadOnlyList<double> LossHistory => Training?.LossHistory ?? [];

    /// <summary>The folder the mixture was read from, or null for one built in memory.</summary>
    public string? Path { get; internal set; }

    public long GateParameterCount => Gates.Sum(g => g.Parameters().Sum(p => p.Value.NumberOfElements));

    /// <summary>
    /// A mixture of <paramref name="experts"/> with untrained (uniform) gates. Experts may adapt
    /// different modules; at a module an expert does not adapt, its output is zero.
    /// </summary>
    /// <param name="experts">Two or more adapters with distinct names (one works, and equals that adapter).</param>
    /// <param name="granularity">One gate for the whole model (default), per transformer layer or per module.</param>
    /// <param name="temperature">The softmax temperature the gates start with, greater than 0.</param>
    /// <param name="name">The mixture's name.</param>
    /// <param name="gateInput">What the gates read; by default the hidden state pooled over each row's prompt, which routes rows by what they ask for (docs/mole-routing.md).</param>
    /// <exception cref="LoraException">No experts, duplicate names, a bad temperature, or experts that disagree on a module's shape.</exception>
    public static LoraMixture Create(IReadOnlyList<LoraAdapter> experts, MixtureGranularity granularity = MixtureGranularity.Model,
        double temperature = 1.0, string name = "mixture", GateInput gateInput = GateInput.Prompt)
    {
        ArgumentNullException.ThrowIfNull(experts);
        if (experts.Count == 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, name, "a mixture needs at least one expert");
        if (!double.IsFinite(temperature) || temperature <= 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, name, $"temperature must be a positive number, not {temperature}");
        if (experts.GroupBy(e => e.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new LoraException(LoraErrorKind.AlreadyExists, twice.Key, "two experts have this name; import one under another name");
        var widths = ModuleWidths(experts);
        var gates = GateLayout(widths.Keys, granularity)
            .Select(g => new MixtureGate(g.Key, g.Modules[0], g.Modules, experts.Count,
                gateInput switch
                {
                    GateInput.HiddenState or GateInput.Prompt => widths[g.Modules[0]].In,
                    GateInput.Likelihood => experts.Count,
                    _ => experts.Count * widths[g.Modules[0]].Out,
                }, temperature, pools: gateInput == GateInput.Prompt))
            .ToList();
        return new LoraMixture(name, experts.ToList(), granularity, temperature, gateInput, gates);
    }

    private static Dictionary<string, (long In, long Out)> ModuleWidths(IReadOnlyList<LoraAdapter> experts)
    {
        var widths = new Dictionary<string, (long In, long Out, string Expert)>(StringComparer.Ordinal);
        foreach (var expert in experts)
            foreach (var module in expert.Modules)
            {
                if (!widths.TryGetValue(module.Key, out var seen))
                    widths[module.Key] = (module.InFeatures, module.OutFeatures, expert.Name);
                else if (seen.In != module.InFeatures || seen.Out != module.OutFeatures)
                    throw new LoraException(LoraErrorKind.ShapeMismatch, expert.Path ?? expert.Name,
                        $"module '{module.Key}' maps {module.InFeatures} -> {module.OutFeatures} but expert '{seen.Expert}' maps {seen.In} -> {seen.Out}: the experts are for different models");
            }
        return widths.ToDictionary(w => w.Key, w => (w.Value.In, w.Value.Out), StringComparer.Ordinal);
    }

    private static IEnumerable<(string Key, IReadOnlyList<string> Modules)> GateLayout(IEnumerable<string> moduleKeys, MixtureGranularity granularity)
    {
        var groups = moduleKeys.GroupBy(key => granularity switch
        {
            MixtureGranularity.Layer => LayerOf(key) ?? key,
            MixtureGranularity.Model => ModelGateKey,
            _ => key,
        }, StringComparer.Ordinal);
        return groups
            .Select(g => (g.Key, (IReadOnlyList<string>)g.OrderBy(LayerIndex).ThenBy(ForwardRank).ThenBy(k => k, StringComparer.Ordinal).ToList()))
            .OrderBy(g => LayerIndex(g.Item2[0]))
            .ThenBy(g => ForwardRank(g.Item2[0]))
            .ThenBy(g => g.Key, StringComparer.Ordinal);
    }

    private static string? LayerOf(string moduleKey) => LayerKey().Match(moduleKey) is { Success: true } m ? m.Groups["layer"].Value : null;

    private static int LayerIndex(string moduleKey) =>
        LayerKey().Match(moduleKey) is { Success: true } m ? int.Parse(m.Groups["index"].Value) : int.MaxValue;

    private static int ForwardRank(string moduleKey)
    {
        int rank = Array.IndexOf(ForwardOrder, moduleKey[(moduleKey.LastIndexOf('.') + 1)..]);
        return rank < 0 ? ForwardOrder.Length : rank;
    }

    [GeneratedRegex(@"^(?<layer>.*\.layers\.(?<index>\d+))\.")]
    private static partial Regex LayerKey();

    /// <summary>Whether the expert named <paramref name="expert"/> takes part in the mixture.</summary>
    public bool IsEnabled(string expert) => !_disabled.Contains(expert);

    /// <summary>Per expert, in <see cref="Experts"/> order, whether it takes part in the mixture.</summary>
    public bool[] EnabledMask() => Experts.Select(e => IsEnabled(e.Name)).ToArray();

    /// <summary>Masks experts out (branch selection): their gate values become 0 and the others renormalise.</summary>
    /// <exception cref="LoraException">An unknown name, or every expert would be disabled.</exception>
    public void Disable(params string[] experts)
    {
        CheckNames(experts);
        if (Experts.All(e => _disabled.Contains(e.Name) || experts.Contains(e.Name, StringComparer.Ordinal)))
            throw new LoraException(LoraErrorKind.InvalidArgument, Name, "at least one expert must stay enabled");
        _disabled.UnionWith(experts);
    }

    /// <summary>Takes masked experts back into the mixture.</summary>
    /// <exception cref="LoraException">An unknown name.</exception>
    public void Enable(params string[] experts)
    {
        CheckNames(experts);
        _disabled.ExceptWith(experts);
    }

    private void CheckNames(string[] experts)
    {
        ArgumentNullException.ThrowIfNull(experts);
        foreach (var name in experts.Where(n => !Experts.Any(e => e.Name == n)))
            throw new LoraException(LoraErrorKind.NotFound, name, $"no expert of this name in mixture '{Name}' (experts: {string.Join(", ", ExpertNames)})");
    }

    /// <summary>
    /// Plugs the mixture into <paramref name="model"/>: every adapted layer's contribution becomes
    /// the gated sum of the experts. <see cref="BaseModel.Forward"/>, <see cref="BaseModel.Run"/>
    /// and <see cref="PerplexityEvaluator"/> then use it; disposing the result takes it out again.
    /// Merged adapters may stay attached (they are part of the weights); unmerged ones may not.
    /// </summary>
    /// <exception cref="LoraException">A module the model lacks or shapes it differently, or a layer already has a contribution.</exception>
    public MixtureAttachment AttachTo(BaseModel model) => MixtureAttachment.Create(this, model);

    /// <summary>
    /// The gates' mean values per expert: from the last training when there was one, uniform over
    /// the enabled experts for untrained gates. To measure on data, use <see cref="GateMeter"/>.
    /// </summary>
    public IReadOnlyList<GateUsage> GateUsage()
    {
        if (Training is not null)
            return Training.GateUsage;
        var enabled = EnabledExperts;
        var uniform = Experts.Select(e => enabled.Contains(e.Name) ? 1.0 / enabled.Count : 0.0).ToList();
        return Gates.Select(g => new GateUsage(g.Key, ExpertNames, uniform, 0)).ToList();
    }

    public override string ToString() => $"{Name} ({string.Join(", ", ExpertNames)}; {Gates.Count} {Granularity} gates)";

    public void Dispose()
    {
        foreach (var gate in Gates)
            gate.Dispose();
    }
}
