namespace LoraLego.Core.Mixture;

/// <summary>How many gates a <see cref="LoraMixture"/> has: which adapted layers share one set of gate values.</summary>
public enum MixtureGranularity
{
    /// <summary>One gate per transformer layer, shared by all its adapted modules: the MoLE paper's best setting.</summary>
    Layer,

    /// <summary>One gate per adapted module (q_proj, v_proj, ...): finer control, more gate parameters.</summary>
    Module,
}
