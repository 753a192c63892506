using System.Text.Json.Nodes;

namespace LoraLego.Core.Surgery;

/// <summary>What a resize or an extraction did: the resulting adapter's provenance, as merges record their choices.</summary>
internal static class SurgeryRecord
{
    public static JsonObject Of(string operation, RankRule rule, IEnumerable<ModuleRankChange> changes, params (string Key, string Value)[] details)
    {
        var modules = new JsonObject();
        foreach (var c in changes)
            modules[c.Module] = new JsonObject { ["old_rank"] = c.OldRank, ["new_rank"] = c.NewRank, ["energy_kept"] = c.EnergyKept };
        var record = new JsonObject { ["operation"] = operation, ["rule"] = rule.ToJson() };
        foreach (var (key, value) in details)
            record[key] = value;
        record["modules"] = modules;
        return record;
    }
}
