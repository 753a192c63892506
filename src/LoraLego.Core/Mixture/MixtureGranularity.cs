namespace LoraLego.Core.Mixture;

/// <summary>How many gates a <see cref="LoraMixture"/> has: which adapted layers share one set of gate values.</summary>
public enum MixtureGranularity
{
    /// <summary>One gate per transformer layer, shared by all its adapted modules: the MoLE paper's best setting.</summary>
    Layer,

    /// <summary>One gate per adapted module (q_proj, v_proj, ...): finer control, more gate parameters.</summary>
    Module,

    /// <summary>
    /// One gate for the whole model, computed at the first adapted module and used at every layer:
    /// a row gets one mix of experts throughout. Not the paper's (it found whole-network gates
    /// worse than per-layer ones), but the default: with <see cref="GateInput.Prompt"/> it routes
    /// tasks where per-layer gates can settle on another skill's expert in some layers and the
    /// row fails (docs/mole-routing.md); the one gate learns from the summed gradient of all layers.
    /// </summary>
    Model,
}
