namespace LoraLego.Core.Mixture;

/// <summary>What a mixture's gates read to weigh the experts.</summary>
public enum GateInput
{
    /// <summary>
    /// The experts' outputs at the gate's input module, concatenated (N x out_features): MoLE's
    /// design (arXiv 2404.13628).
    /// </summary>
    ExpertOutputs,

    /// <summary>
    /// The hidden state the experts read at the gate's input module (in_features wide). Not the
    /// paper's: rank-r experts pass on only an N*r-dimensional projection of that state. On the two
    /// domains sampled from the fixture model it routed clearly better (see <see cref="MixtureGate"/>).
    /// </summary>
    HiddenState,

    /// <summary>
    /// Each expert's log-likelihood of the row so far (the sum of log p_i(token_s | earlier tokens)
    /// over s up to the current token), centred over the experts: the evidence for which expert
    /// wrote the row, which a Bayesian choice of expert would use. Not the paper's, and dearer:
    /// every forward pass first runs the model once per expert. Routes where the domains differ
    /// in which token follows which rather than in their vocabulary, which gates on pooled
    /// states cannot see (docs/mole-routing.md).
    /// </summary>
    Likelihood,

    /// <summary>
    /// The hidden state at the gate's input module, pooled over the row's prompt with learned
    /// attention, so every token of a row is routed by what the prompt asks for: the default. A row
    /// without a known prompt (no labels) is pooled causally over its tokens so far. Not the
    /// paper's; on skillbench it routes each skill's rows to its expert where the paper's gate and
    /// running means do not (docs/mole-routing.md).
    /// </summary>
    Prompt,
}
