using System.Text.Json;
using System.Text.Json.Nodes;
using LoraLego.Core.Formats;
using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>
/// The weight files of a Hugging Face model folder: one model.safetensors, or shards listed by
/// model.safetensors.index.json. Only headers are read up front; a tensor's bytes are copied
/// out of the memory map when it is loaded, converted to the model's dtype and device.
/// </summary>
internal sealed class ModelWeights : IDisposable
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly Dictionary<string, SafetensorsFile> _fileByTensor;
    private readonly List<SafetensorsFile> _files;
    private readonly string _folder;
    private readonly List<LazyWeight> _handles = [];

    private ModelWeights(string folder, List<SafetensorsFile> files, Dictionary<string, SafetensorsFile> fileByTensor, ScalarType dtype, Device device)
    {
        _folder = folder;
        _files = files;
        _fileByTensor = fileByTensor;
        DType = dtype;
        Device = device;
    }

    public ScalarType DType { get; }

    public Device Device { get; }

    public static ModelWeights Open(string folder, ScalarType dtype, Device device)
    {
        string single = Path.Combine(folder, SingleFileName);
        string index = Path.Combine(folder, IndexFileName);
        if (File.Exists(single))
        {
            var file = SafetensorsFile.Open(single);
            return new ModelWeights(folder, [file], file.Entries.ToDictionary(e => e.Name, _ => file, StringComparer.Ordinal), dtype, device);
        }
        if (File.Exists(index))
            return OpenSharded(folder, index, dtype, device);
        if (Directory.EnumerateFiles(folder, "*.bin").Any())
            throw new LoraException(LoraErrorKind.Unsupported, folder,
                "only pickle (.bin) weights here; they are not read because unpickling can run arbitrary code; re-save with save_pretrained(dir, safe_serialization=True)");
        throw new LoraException(LoraErrorKind.NotFound, folder, $"no {SingleFileName} or {IndexFileName} in this folder");
    }

    private static ModelWeights OpenSharded(string folder, string index, ScalarType dtype, Device device)
    {
        JsonObject? weightMap;
        try
        {
            weightMap = JsonNode.Parse(File.ReadAllText(index))?["weight_map"] as JsonObject;
        }
        catch (JsonException e)
        {
            throw new LoraException(LoraErrorKind.InvalidData, index, $"not valid JSON ({e.Message})", e);
        }
        if (weightMap is null)
            throw new LoraException(LoraErrorKind.InvalidData, index, "no \"weight_map\" object");
        var files = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        var fileByTensor = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            foreach (var (tensor, shardNode) in weightMap)
            {
                string shard = shardNode?.GetValueKind() == JsonValueKind.String ? shardNode.GetValue<string>()
                    : throw new LoraException(LoraErrorKind.InvalidData, index, $"the shard of '{tensor}' is not a file name");
                if (!files.TryGetValue(shard, out var file))
                    files[shard] = file = SafetensorsFile.Open(ShardPath(folder, index, shard));
                if (!file.Contains(tensor))
                    throw new LoraException(LoraErrorKind.InvalidData, file.Path, $"the index places '{tensor}' in this shard but it is not there");
                fileByTensor[tensor] = file;
            }
        }
        catch
        {
            foreach (var file in files.Values)
                file.Dispose();
            throw;
        }
        return new ModelWeights(folder, files.Values.ToList(), fileByTensor, dtype, device);
    }

    // A shard name that climbs out of the folder would make the index a way to read any file.
    private static string ShardPath(string folder, string index, string shard)
    {
        string full = Path.GetFullPath(Path.Combine(folder, shard));
        if (Path.GetDirectoryName(full) != Path.GetFullPath(folder))
            throw new LoraException(LoraErrorKind.InvalidData, index, $"shard '{shard}' is not a file in the model folder");
        return full;
    }

    /// <summary>
    /// A handle that loads <paramref name="name"/> the first time it is used; presence, shape and
    /// dtype are checked now, from the header, so a wrong file fails at load rather than mid-forward.
    /// </summary>
    public LazyWeight Lazy(string name, params long[] expectedShape)
    {
        var file = FileOf(name);
        var entry = file[name];
        if (!entry.Shape.SequenceEqual(expectedShape))
            throw new LoraException(LoraErrorKind.ShapeMismatch, file.Path,
                $"'{name}' is [{string.Join(", ", entry.Shape)}] but config.json implies [{string.Join(", ", expectedShape)}]");
        if (!entry.DType.IsFloating())
            throw new LoraException(LoraErrorKind.InvalidData, file.Path, $"'{name}' has dtype {entry.DType}; weights must be floating point");
        var handle = new LazyWeight(this, name, expectedShape);
        _handles.Add(handle);
        return handle;
    }

    /// <summary>Every tensor in the files, sorted by name.</summary>
    public IEnumerable<SafetensorsEntry> Entries =>
        _fileByTensor.Keys.Order(StringComparer.Ordinal).Select(name => _fileByTensor[name][name]);

    /// <summary>
    /// A new CPU tensor holding <paramref name="name"/> as the model has it now: the loaded value (merged adapters
    /// included, in the model's dtype) when it is loaded, else the file's bytes in their own dtype, read without
    /// keeping them, so walking every weight costs one tensor of memory.
    /// </summary>
    public Tensor ReadCurrent(string name)
    {
        var loaded = _handles.FirstOrDefault(h => h.Name == name && h.IsLoaded);
        return loaded is not null ? loaded.Value.to(CPU, copy: true) : FileOf(name).ReadTensor(name);
    }

    /// <summary>Elements of the weights read from their files so far.</summary>
    public long LoadedParameterCount => _handles.Where(h => h.IsLoaded).Sum(h => h.Shape.Aggregate(1L, (a, b) => a * b));

    /// <summary>The number of weight elements in all files.</summary>
    public long ParameterCount => _files.Sum(f => f.Entries.Sum(e => e.ElementCount));

    /// <summary>
    /// A new tensor in the model's dtype on its device, kept out of any dispose scope because
    /// the model holds it.
    /// </summary>
    public Tensor Load(string name)
    {
        using var raw = FileOf(name).ReadTensor(name);
        var converted = raw.to(DType, Device, copy: true);
        converted.DetachFromDisposeScope();
        return converted;
    }

    private SafetensorsFile FileOf(string name) =>
        _fileByTensor.TryGetValue(name, out var file) ? file
            : throw new LoraException(LoraErrorKind.InvalidData, _folder, $"the model has no tensor '{name}'");

    public void Dispose()
    {
        foreach (var file in _files)
            file.Dispose();
    }
}
