namespace LoraLego.Core.Mixture;

/// <summary>Finds an expert by name in a list of expert names, as gate reports are indexed.</summary>
internal static class ExpertIndex
{
    /// <exception cref="LoraException">NotFound when no expert has that name.</exception>
    public static int Of(IReadOnlyList<string> experts, string expert)
    {
        for (int i = 0; i < experts.Count; i++)
            if (experts[i] == expert)
                return i;
        throw new LoraException(LoraErrorKind.NotFound, expert, $"no such expert (experts: {string.Join(", ", experts)})");
    }
}
