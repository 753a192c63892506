using System.Text.Json.Nodes;

namespace LoraLego.Core.Adapters;

/// <summary>
/// Writes a PEFT config that reproduces a set of modules exactly: r and lora_alpha from the
/// most common module, rank_pattern and alpha_pattern (full module names) for the others.
/// PEFT can only express per-module scaling through those fields, so this is the one place
/// that turns module scalings back into config numbers.
/// </summary>
public static class AdapterConfigDescription
{
    /// <summary>True when <paramref name="config"/> gives every module its rank and scaling.</summary>
    public static bool Describes(AdapterConfig config, IEnumerable<LoraModule> modules) =>
        modules.All(m => config.RankFor(m.Key) == m.Rank && Close(config.AlphaFor(m.Key), AlphaFor(m, config.UseRsLora)));

    /// <summary>
    /// A copy of <paramref name="template"/> (unknown fields kept) with peft_type, r, lora_alpha,
    /// use_rslora, rank_pattern, alpha_pattern and target_modules set to describe <paramref name="modules"/>.
    /// </summary>
    public static JsonObject Describe(JsonObject template, IReadOnlyList<LoraModule> modules, bool useRsLora)
    {
        var config = (JsonObject)template.DeepClone();
        config.Remove(Provenance.LegacyConfigKey);
        config["peft_type"] = "LORA";
        config["use_rslora"] = useRsLora;
        var wanted = modules.Select(m => (m.Key, m.Rank, Alpha: AlphaFor(m, useRsLora))).ToList();
        var rankPattern = new JsonObject();
        var alphaPattern = new JsonObject();
        if (wanted.Count > 0)
        {
            int r = wanted.GroupBy(w => w.Rank).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
            double alpha = wanted.Where(w => w.Rank == r).GroupBy(w => Math.Round(w.Alpha, 9)).OrderByDescending(g => g.Count()).First().First().Alpha;
            foreach (var w in wanted)
            {
                if (w.Rank != r)
                    rankPattern[w.Key] = w.Rank;
                if (!Close(w.Alpha, alpha))
                    alphaPattern[w.Key] = Number(w.Alpha);
            }
            config["r"] = r;
            config["lora_alpha"] = Number(alpha);
        }
        config["rank_pattern"] = rankPattern;
        config["alpha_pattern"] = alphaPattern;
        var suffixes = modules.Select(m => m.Key[(m.Key.LastIndexOf('.') + 1)..]).Distinct().Order(StringComparer.Ordinal).ToArray();
        var existing = config["target_modules"] is JsonArray arr ? arr.Select(n => n?.ToString()).ToHashSet() : [];
        if (!suffixes.All(existing.Contains))
            config["target_modules"] = new JsonArray(suffixes.Select(s => (JsonNode)s).ToArray());
        return config;
    }

    /// <summary>The lora_alpha that gives module <paramref name="m"/> its scaling.</summary>
    public static double AlphaFor(LoraModule m, bool useRsLora) => useRsLora ? m.Scaling * Math.Sqrt(m.Rank) : m.Scaling * m.Rank;

    private static bool Close(double x, double y) => Math.Abs(x - y) <= 1e-9 * Math.Max(1, Math.Abs(y));

    private static JsonNode Number(double v) =>
        Math.Abs(v - Math.Round(v)) < 1e-9 && Math.Abs(v) < int.MaxValue ? JsonValue.Create((int)Math.Round(v)) : JsonValue.Create(v);
}
