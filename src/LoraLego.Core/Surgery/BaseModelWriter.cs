using System.IO.Enumeration;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraLego.Core.Formats;
using LoraLego.Core.Models;

namespace LoraLego.Core.Surgery;

/// <summary>
/// Writes a model with its merged adapters baked in, as a Hugging Face folder that transformers loads: config.json,
/// model.safetensors (or shards and model.safetensors.index.json), and the source folder's other files (tokenizer,
/// generation config) copied. Tensors stream one at a time from the model or its memory-mapped files; the folder is
/// filled under a temporary name and renamed into place, so it appears whole or not at all.
/// </summary>
public static class BaseModelWriter
{
    /// <summary>transformers' default max_shard_size, "5GB".</summary>
    public const long DefaultMaxShardBytes = 5_000_000_000;

    // Weights in other formats would contradict the new ones; they are not copied.
    private static readonly string[] WeightPatterns = ["*.safetensors", "*.bin", "*.pt", "*.pth", "*.ckpt", "*.h5", "*.msgpack", "*.gguf", "*.index.json"];

    /// <param name="dtype">Element type of the floating-point tensors; null keeps each tensor's file dtype.</param>
    /// <param name="replace">Replace a folder that holds a model whole (else it is an error); a folder holding other files is never replaced.</param>
    /// <param name="progress">Told each tensor as it is written.</param>
    /// <param name="cancellationToken">Checked between tensors: a cancelled export leaves nothing behind.</param>
    /// <returns>The written weight files, in order.</returns>
    public static IReadOnlyList<string> Write(BaseModel model, string folder, SafetensorsDType? dtype = null, long maxShardBytes = DefaultMaxShardBytes,
        bool replace = false, Action<SurgeryProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        folder = Path.GetFullPath(folder.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar));
        BakedWeights.RequireNoUnmergedAdapters(model);
        if (dtype is { } d && !d.IsFloating())
            throw new LoraException(LoraErrorKind.InvalidArgument, folder, $"cannot export model weights as {d}");
        if (maxShardBytes <= 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, folder, $"the shard size {maxShardBytes} must be positive");
        // The model reads its weights from memory maps of the source files: replacing them would pull them away.
        if (string.Equals(folder, model.Path, StringComparison.Ordinal))
            throw new LoraException(LoraErrorKind.InvalidArgument, folder, "is the model's own folder, whose files the model is reading; export to another folder");
        if (File.Exists(folder))
            throw new LoraException(LoraErrorKind.AlreadyExists, folder, "is a file; give a folder to write the model into");
        if (Directory.Exists(folder) && Directory.EnumerateFileSystemEntries(folder).Any())
        {
            if (!File.Exists(Path.Combine(folder, "config.json")))
                throw new LoraException(LoraErrorKind.AlreadyExists, folder, "holds files that are not a model; give an empty or new folder");
            if (!replace)
                throw new LoraException(LoraErrorKind.AlreadyExists, folder, "already holds a model; use -Force to replace it");
        }

        var entries = model.Weights.Entries.ToList();
        var items = entries.Select((e, i) => new SafetensorsWriteItem(e.Name, dtype is { } t && e.DType.IsFloating() ? t : e.DType, e.Shape, () =>
        {
            progress?.Invoke(new SurgeryProgress(i, entries.Count, e.Name));
            return model.Weights.ReadCurrent(e.Name);
        })).ToList();
        var shards = Shard(items, maxShardBytes);
        var names = shards.Count == 1
            ? [ModelWeights.SingleFileName]
            : Enumerable.Range(1, shards.Count).Select(i => $"model-{i:D5}-of-{shards.Count:D5}.safetensors").ToList();
        void Fill(string dir)
        {
            CopyOtherFiles(model.Path, dir, dtype);
            var metadata = new Dictionary<string, string> { ["format"] = "pt" };
            for (int i = 0; i < shards.Count; i++)
                SafetensorsWriter.Write(Path.Combine(dir, names[i]), shards[i], metadata, cancellationToken);
            if (shards.Count > 1)
                WriteIndex(Path.Combine(dir, ModelWeights.IndexFileName), shards, names);
        }
        if (replace)
            AtomicFile.ReplaceDirectory(folder, Fill);
        else if (Directory.Exists(folder))
        {
            // An empty folder the user made: filled beside it, then swapped in.
            Directory.Delete(folder);
            AtomicFile.CreateDirectory(folder, Fill);
        }
        else
            AtomicFile.CreateDirectory(folder, Fill);
        return names.Select(n => Path.Combine(folder, n)).ToList();
    }

    // transformers' rule: tensors in order, a new shard when the next one would pass the limit; a tensor larger
    // than the limit gets a shard of its own.
    private static List<List<SafetensorsWriteItem>> Shard(List<SafetensorsWriteItem> items, long maxShardBytes)
    {
        var shards = new List<List<SafetensorsWriteItem>> { new() };
        long size = 0;
        foreach (var item in items)
        {
            long bytes = Bytes(item);
            if (size + bytes > maxShardBytes && shards[^1].Count > 0)
            {
                shards.Add([]);
                size = 0;
            }
            shards[^1].Add(item);
            size += bytes;
        }
        return shards;
    }

    private static long Bytes(SafetensorsWriteItem item) => item.Shape.Aggregate(1L, (a, b) => a * b) * item.DType.ElementSize();

    private static void WriteIndex(string path, List<List<SafetensorsWriteItem>> shards, IReadOnlyList<string> names)
    {
        var map = new JsonObject();
        for (int i = 0; i < shards.Count; i++)
            foreach (var item in shards[i])
                map[item.Name] = names[i];
        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = shards.Sum(s => s.Sum(Bytes)) },
            ["weight_map"] = map,
        };
        WriteJson(path, index);
    }

    private static void CopyOtherFiles(string source, string target, SafetensorsDType? dtype)
    {
        foreach (var file in Directory.EnumerateFiles(source))
        {
            string name = Path.GetFileName(file);
            if (WeightPatterns.Any(p => FileSystemName.MatchesSimpleExpression(p, name)) || name == "config.json")
                continue;
            File.Copy(file, Path.Combine(target, name));
        }
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!.AsObject();
        if (dtype is { } d)
        {
            // transformers 5 writes "dtype", earlier versions "torch_dtype"; whichever the source has is updated.
            string key = config.ContainsKey("dtype") || !config.ContainsKey("torch_dtype") ? "dtype" : "torch_dtype";
            config[key] = d switch
            {
                SafetensorsDType.F16 => "float16",
                SafetensorsDType.BF16 => "bfloat16",
                SafetensorsDType.F64 => "float64",
                _ => "float32",
            };
        }
        WriteJson(Path.Combine(target, "config.json"), config);
    }

    private static void WriteJson(string path, JsonObject json) =>
        AtomicFile.Write(path, s =>
        {
            using var w = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true });
            json.WriteTo(w);
        });
}
