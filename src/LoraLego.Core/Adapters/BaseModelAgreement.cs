namespace LoraLego.Core.Adapters;

/// <summary>
/// Whether adapters name one base model. Adapters trained on different base models of one
/// architecture have the same shapes, so nothing else stops them being merged or mixed; the
/// result fits neither base, which the user should hear about.
/// </summary>
public static class BaseModelAgreement
{
    /// <summary>
    /// Null when every adapter that names a base model (base_model_name_or_path) names the same one;
    /// otherwise a sentence listing which adapter names which. Adapters naming none are not counted.
    /// Names are compared exactly: two relative paths to one folder count as different.
    /// </summary>
    /// <param name="adapters">Adapter name and base model, in input order; an adapter may appear more than once.</param>
    public static string? Disagreement(IEnumerable<(string Adapter, string? BaseModel)> adapters)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        var named = adapters.Where(a => !string.IsNullOrEmpty(a.BaseModel)).Distinct().ToList();
        var bases = named.Select(a => a.BaseModel).Distinct(StringComparer.Ordinal).ToList();
        if (bases.Count < 2)
            return null;
        var listing = bases.Select(b => $"{string.Join(", ", named.Where(a => a.BaseModel == b).Select(a => a.Adapter))}: {b}");
        return $"the adapters name {bases.Count} different base models ({string.Join("; ", listing)}); what is built from them fits at most one";
    }
}
