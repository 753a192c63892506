using static TorchSharp.torch;

namespace LoraLego.Core.Mixture;

/// <summary>
/// One gate of a <see cref="LoraMixture"/>: from what it reads (the experts' outputs or the hidden
/// state at its input module, or the experts' likelihoods of the row; <see cref="GateInput"/>) it
/// computes, for every token, one weight per expert, and those weights mix the experts at every
/// module it governs. Holds its learned parameters on the CPU in float32.
/// </summary>
/// <remarks>
/// The gate, per token t of a row: e_t = the experts' outputs at the input module, concatenated
/// (N x out_features), or with <see cref="GateInput.HiddenState"/> the input module's input
/// (in_features); p_t = the mean of e_1..e_t (a causal running mean over the row, so a gate
/// value never depends on later tokens, which would leak the next-token targets into training,
/// and works for any length); z_t = layer_norm(p_t) without affine terms;
/// g_t = softmax(W z_t / tau) over the enabled experts, with tau = exp(log_temperature) learned.
/// With <see cref="GateInput.Likelihood"/>, z_t is instead the vector of the experts'
/// log-likelihoods of tokens 1..t, centred over the experts, used as it is: its size is the
/// evidence. W starts at zero, so an untrained gate is uniform.
/// <para>
/// With <see cref="GateInput.Prompt"/>, e_s is the input module's input and p_t pools it with
/// attention weights softmax_s(q . layer_norm(e_s)) over the row's prompt positions s (every t of
/// a row whose prompt is known: the prompt is given before any answer token, so this leaks nothing)
/// or over s &lt;= t (a row without a known prompt). q starts at zero, so training starts from the
/// mean and learns which positions tell the task.
/// </para>
/// <para>
/// Why HiddenState exists (a departure from MoLE, whose gate reads the experts' outputs): rank-r
/// experts pass on only an N*r-dimensional projection of the state they read. On the two domains
/// sampled from the fixture model (TwoDomainTests), gates on the experts' outputs routed at noise
/// level: the own expert's mean share on held-out A/B rows was 0.44/0.56 (training seed 7),
/// 0.39/0.52 (seed 3), 0.55/0.51 (seed 11), and computing x*x instead of pow(x, 2) in RMSNorm
/// moved A's from 0.61 to 0.44. Gates on the hidden state gave 0.65/0.65, 0.61/0.66 and 0.61/0.59,
/// and the mixture's held-out loss went from 5.490/5.486 to 5.438/5.470 nats (seed 7). Reading both
/// was worse than the hidden state alone (0.57/0.66 and 0.53/0.57). Both pool per-token states and
/// miss that these domains differ in which token follows which; <see cref="GateInput.Likelihood"/>
/// reads exactly that and routes 0.97 (docs/mole-routing.md).
/// </para>
/// </remarks>
public sealed class MixtureGate : IDisposable
{
    internal MixtureGate(string key, string inputModule, IReadOnlyList<string> modules, int expertCount, long inputWidth, double temperature, bool pools)
    {
        Key = key;
        InputModule = inputModule;
        Modules = modules;
        Weight = zeros(expertCount, inputWidth, ScalarType.Float32);
        LogTemperature = tensor(new[] { (float)Math.Log(temperature) }, [1]);
        Weight.DetachFromDisposeScope();
        LogTemperature.DetachFromDisposeScope();
        if (pools)
        {
            Query = zeros(inputWidth, ScalarType.Float32);
            Query.DetachFromDisposeScope();
        }
    }

    /// <summary>model.layers.N for a layer gate, the module's path for a module gate, "model" for the whole-model gate.</summary>
    public string Key { get; }

    /// <summary>The module whose experts' outputs the gate reads: the first of <see cref="Modules"/> a forward pass reaches.</summary>
    public string InputModule { get; }

    /// <summary>The modules whose experts this gate's values mix, in forward order.</summary>
    public IReadOnlyList<string> Modules { get; }

    /// <summary>Columns of the projection: expert count times the input module's output width, its input width (HiddenState), or the expert count (Likelihood).</summary>
    public long InputWidth => Weight.shape[1];

    /// <summary>The learned softmax temperature.</summary>
    public double Temperature => Math.Exp(LogTemperature.item<float>());

    /// <summary>The projection W, [experts, input width], float32 on the CPU.</summary>
    internal Tensor Weight { get; }

    /// <summary>log tau, [1]: learning the logarithm keeps the temperature positive.</summary>
    internal Tensor LogTemperature { get; }

    /// <summary>
    /// The attention query that pools a <see cref="GateInput.Prompt"/> gate's states over the
    /// prompt, [input width]; null for other gates. It starts at zero: a plain mean.
    /// </summary>
    internal Tensor? Query { get; }

    /// <summary>The learned tensors by the names they have in gates.safetensors (after the gate's key and a dot).</summary>
    internal IEnumerable<(string Name, Tensor Value)> Parameters()
    {
        yield return ("weight", Weight);
        yield return ("log_temperature", LogTemperature);
        if (Query is not null)
            yield return ("query", Query);
    }

    /// <summary>Overwrites the parameters with trained or loaded values (any device, same shapes), in <see cref="Parameters"/> order.</summary>
    internal void SetParameters(IReadOnlyList<Tensor> values)
    {
        using var noGrad = no_grad();
        foreach (var ((_, parameter), value) in Parameters().Zip(values, (p, v) => (p, v)))
            parameter.copy_(value);
    }

    public override string ToString() => $"{Key} ({Modules.Count} modules, tau {Temperature:G4})";

    public void Dispose()
    {
        foreach (var (_, parameter) in Parameters())
            parameter.Dispose();
    }
}
