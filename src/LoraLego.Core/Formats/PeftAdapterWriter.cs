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
    /// <param name="cancellationToken">Checked between tensors: a cancelled export leaves no files (a new folder does not appear).</param>
    public static void Write(LoraAdapter adapter, string folder, SafetensorsDType? dtype = null, CancellationToken cancellationToken = default)
    {
        folder = System.IO.Path.GetFullPath(folder);
        if (dtype is { } d && !d.IsFloating())
            throw new LoraException(LoraErrorKind.InvalidArgument, folder, $"cannot export LoRA factors as {d}");
        var config = Validate(adapter, folder);
        AtomicFile.CheckWritable(folder);
        var items = BuildItems(adapter, dtype);
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        // A record that code added to the config after the adapter was built still goes to the header, not to PEFT.
        if ((adapter.Provenance ?? adapter.Config.Json[Provenance.LegacyConfigKey] as JsonObject) is { } record)
            metadata[Provenance.MetadataKey] = Provenance.Serialize(record);
        void Fill(string dir)
        {
            SafetensorsWriter.Write(System.IO.Path.Combine(dir, PeftAdapterReader.ModelFileName), items, metadata, cancellationToken);
            AtomicFile.Write(System.IO.Path.Combine(dir, PeftAdapterReader.ConfigFileName), s =>
            {
                using var w = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true });
                config.WriteTo(w);
            });
        }
        if (Directory.Exists(folder))
            AtomicFile.ReplaceFiles(folder, [PeftAdapterReader.ModelFileName, PeftAdapterReader.ConfigFileName], Fill);
        else
            AtomicFile.CreateDirectory(folder, Fill);
    }

    /// <summary>The error id of an adapter that has no modules to write.</summary>
    public const string EmptyAdapterId = "EmptyAdapter";

    /// <summary>
    /// Checks, before a byte is written, that what would be written is an adapter that
    /// <see cref="PeftAdapterReader"/> (and PEFT) reads back as this one: at least one module, ranks
    /// of at least 1, tensor names that do not collide, and a config that gives every module its
    /// rank and scaling. Returns that config.
    /// </summary>
    /// <exception cref="LoraException">Naming <paramref name="target"/> (the folder to write) and the module.</exception>
    public static JsonObject Validate(LoraAdapter adapter, string target)
    {
        if (adapter.Modules.Count == 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, target,
                $"adapter '{adapter.Name}' has no modules, and an adapter without modules cannot be imported again (did a -Module filter match nothing?)",
                errorId: EmptyAdapterId);
        foreach (var m in adapter.Modules)
            if (m.Rank < 1)
                throw new LoraException(LoraErrorKind.InvalidArgument, target, $"adapter '{adapter.Name}', module '{m.Key}' has rank {m.Rank}; PEFT needs at least 1",
                    errorId: EmptyAdapterId);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in BuildItems(adapter, null))
            if (!names.Add(item.Name))
                throw new LoraException(LoraErrorKind.InvalidArgument, target, $"adapter '{adapter.Name}' would write tensor '{item.Name}' twice");
        var config = BuildConfig(adapter);
        AdapterConfig check;
        try
        {
            check = new AdapterConfig(config);
        }
        catch (LoraException e)
        {
            throw new LoraException(e.Kind, target, $"adapter '{adapter.Name}' has a config that could not be read back: {e.Detail}", e, e.ErrorId);
        }
        foreach (var m in adapter.Modules)
        {
            int rank = check.RankFor(m.Key);
            double alpha = check.AlphaFor(m.Key);
            double scaling = check.UseRsLora ? alpha / Math.Sqrt(rank) : alpha / rank;
            if (rank != m.Rank || Math.Abs(scaling - m.Scaling) > 1e-6 * Math.Max(1e-12, Math.Abs(m.Scaling)))
                throw new LoraException(LoraErrorKind.InvalidData, target,
                    $"adapter '{adapter.Name}', module '{m.Key}': the config to be written gives rank {rank} and scaling {scaling:G6}, not rank {m.Rank} and scaling {m.Scaling:G6}");
        }
        return config;
    }

    /// <summary>Refuses a folder that is a file, or that already holds an adapter unless <paramref name="force"/>.</summary>
    /// <param name="target">What the error names: the folder, or the place that asked for it (a recipe's file:line:column).</param>
    public static void CheckDestination(string folder, bool force, string? target = null)
    {
        string what = target is null ? "" : $"'{folder}' ";
        if (File.Exists(folder))
            throw new LoraException(LoraErrorKind.AlreadyExists, target ?? folder, what + "is a file; give a folder to write the adapter into");
        bool holdsAdapter = File.Exists(System.IO.Path.Combine(folder, PeftAdapterReader.ModelFileName))
            || File.Exists(System.IO.Path.Combine(folder, PeftAdapterReader.ConfigFileName));
        if (holdsAdapter && !force)
            throw new LoraException(LoraErrorKind.AlreadyExists, target ?? folder, what + "already holds an adapter; use -Force to replace it");
    }

    public static IReadOnlyList<SafetensorsWriteItem> BuildItems(LoraAdapter adapter, SafetensorsDType? dtype)
    {
        var items = new List<SafetensorsWriteItem>();
        foreach (var m in adapter.Modules.OrderBy(m => m.Key, StringComparer.Ordinal))
            items.AddRange(LoraFactors.Items(m, $"base_model.model.{m.Key}.lora_A.weight", $"base_model.model.{m.Key}.lora_B.weight", dtype));
        foreach (var t in adapter.ExtraTensors)
            items.Add(new SafetensorsWriteItem(t.Name, t.DType, t.Shape, t.Load));
        return items;
    }

    /// <summary>The adapter's own config when it still describes every module exactly, else a description of them.</summary>
    public static JsonObject BuildConfig(LoraAdapter adapter)
    {
        if (!AdapterConfigDescription.Describes(adapter.Config, adapter.Modules))
            return AdapterConfigDescription.Describe(adapter.Config.Json, adapter.Modules, adapter.Config.UseRsLora);
        var config = (JsonObject)adapter.Config.Json.DeepClone();
        config["peft_type"] = "LORA";
        config.Remove(Provenance.LegacyConfigKey);
        return config;
    }
}
