using System.Text.Json;
using System.Text.Json.Nodes;
using LoraLego.Core.Adapters;

namespace LoraLego.Core.Formats;

/// <summary>
/// Writes a LoraAdapter as a PEFT folder that PeftModel.from_pretrained loads: tensors under
/// base_model.model.&lt;module&gt;.lora_{A,B}.weight and a config whose r, lora_alpha,
/// rank_pattern and alpha_pattern reproduce every module's rank and scaling.
/// </summary>
public static class PeftAdapterWriter
{
    /// <summary>
    /// Writes into <paramref name="folder"/>. A new folder appears whole (filled under a temporary
    /// name, then renamed); in an existing folder each file is replaced by an atomic rename.
    /// </summary>
    /// <param name="dtype">Element type of the factors; null keeps each tensor's own.</param>
    public static void Write(LoraAdapter adapter, string folder, SafetensorsDType? dtype = null)
    {
        if (dtype is { } d && !d.IsFloating())
            throw new LoraException(LoraErrorKind.InvalidArgument, folder, $"cannot export LoRA factors as {d}");
        var config = BuildConfig(adapter);
        var items = BuildItems(adapter, dtype);
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        void Fill(string dir)
        {
            SafetensorsWriter.Write(System.IO.Path.Combine(dir, PeftAdapterReader.ModelFileName), items, metadata);
            AtomicFile.Write(System.IO.Path.Combine(dir, PeftAdapterReader.ConfigFileName), s =>
            {
                using var w = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true });
                config.WriteTo(w);
            });
        }
        if (Directory.Exists(folder))
            Fill(System.IO.Path.GetFullPath(folder));
        else
            AtomicFile.CreateDirectory(folder, Fill);
    }

    public static IReadOnlyList<SafetensorsWriteItem> BuildItems(LoraAdapter adapter, SafetensorsDType? dtype)
    {
        var items = new List<SafetensorsWriteItem>();
        foreach (var m in adapter.Modules.OrderBy(m => m.Key, StringComparer.Ordinal))
        {
            items.Add(new SafetensorsWriteItem($"base_model.model.{m.Key}.lora_A.weight", dtype ?? m.A.DType, m.A.Shape, m.A.Load));
            items.Add(new SafetensorsWriteItem($"base_model.model.{m.Key}.lora_B.weight", dtype ?? m.B.DType, m.B.Shape, m.B.Load));
        }
        foreach (var t in adapter.ExtraTensors)
            items.Add(new SafetensorsWriteItem(t.Name, t.DType, t.Shape, t.Load));
        return items;
    }

    /// <summary>
    /// The config to write: the adapter's own when it still describes every module exactly,
    /// otherwise one with r and lora_alpha from the most common module and patterns for the rest.
    /// </summary>
    public static JsonObject BuildConfig(LoraAdapter adapter)
    {
        var config = (JsonObject)adapter.Config.Json.DeepClone();
        config["peft_type"] = "LORA";
        bool rs = adapter.Config.UseRsLora;
        var wanted = adapter.Modules
            .Select(m => (m.Key, m.Rank, Alpha: rs ? m.Scaling * Math.Sqrt(m.Rank) : m.Scaling * m.Rank))
            .ToList();
        if (wanted.Count == 0)
            return config;
        bool described = wanted.All(w => adapter.Config.RankFor(w.Key) == w.Rank && Close(adapter.Config.AlphaFor(w.Key), w.Alpha));
        if (!described)
        {
            int r = wanted.GroupBy(w => w.Rank).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
            double alpha = wanted.Where(w => w.Rank == r).GroupBy(w => Math.Round(w.Alpha, 9)).OrderByDescending(g => g.Count()).First().First().Alpha;
            var rankPattern = new JsonObject();
            var alphaPattern = new JsonObject();
            foreach (var w in wanted)
            {
                if (w.Rank != r)
                    rankPattern[w.Key] = w.Rank;
                if (!Close(w.Alpha, alpha))
                    alphaPattern[w.Key] = Number(w.Alpha);
            }
            config["r"] = r;
            config["lora_alpha"] = Number(alpha);
            config["use_rslora"] = rs;
            config["rank_pattern"] = rankPattern;
            config["alpha_pattern"] = alphaPattern;
        }
        var suffixes = adapter.Modules.Select(m => m.Key[(m.Key.LastIndexOf('.') + 1)..]).Distinct().Order(StringComparer.Ordinal).ToArray();
        if (!suffixes.All(s => adapter.TargetModules.Contains(s)))
            config["target_modules"] = new JsonArray(suffixes.Select(s => (JsonNode)s).ToArray());
        return config;
    }

    private static bool Close(double x, double y) => Math.Abs(x - y) <= 1e-9 * Math.Max(1, Math.Abs(y));

    private static JsonNode Number(double v) =>
        Math.Abs(v - Math.Round(v)) < 1e-9 && Math.Abs(v) < int.MaxValue ? JsonValue.Create((int)Math.Round(v)) : JsonValue.Create(v);
}
