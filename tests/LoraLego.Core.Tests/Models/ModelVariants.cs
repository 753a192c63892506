using System.Text.Json.Nodes;
using LoraLego.Core.Formats;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Models;

/// <summary>
/// Model folders derived from the tiny Llama fixture in a temporary folder: its weights with
/// some changed, and its config with some fields changed, to exercise what the fixture lacks.
/// </summary>
public sealed class ModelVariants : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("loralego-models-").FullName;

    /// <summary>Writes a variant: <paramref name="editConfig"/> changes config.json, <paramref name="editWeights"/> the tensors.</summary>
    /// <param name="name">Folder name.</param>
    /// <param name="editConfig">Changes the parsed config.json.</param>
    /// <param name="editWeights">Changes the name-to-tensor map.</param>
    /// <param name="shards">1 writes model.safetensors; more write shards and an index.</param>
    public string Create(string name, Action<JsonObject>? editConfig = null, Action<Dictionary<string, Tensor>>? editWeights = null, int shards = 1)
    {
        string folder = Path.Combine(_root, name);
        Directory.CreateDirectory(folder);
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(GoldenLogits.BaseModelFolder, "config.json")))!;
        editConfig?.Invoke(config);
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        using var source = SafetensorsFile.Open(Path.Combine(GoldenLogits.BaseModelFolder, "model.safetensors"));
        var weights = source.Entries.ToDictionary(e => e.Name, e => source.ReadTensor(e.Name));
        editWeights?.Invoke(weights);
        var names = weights.Keys.Order(StringComparer.Ordinal).ToList();
        if (shards == 1)
        {
            Write(Path.Combine(folder, "model.safetensors"), names, weights);
            return folder;
        }
        var weightMap = new JsonObject();
        for (int s = 0; s < shards; s++)
        {
            string file = $"model-{s + 1:00000}-of-{shards:00000}.safetensors";
            var part = names.Where((_, i) => i % shards == s).ToList();
            Write(Path.Combine(folder, file), part, weights);
            foreach (var n in part)
                weightMap[n] = file;
        }
        File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"), new JsonObject { ["weight_map"] = weightMap }.ToJsonString());
        return folder;
    }

    private static void Write(string path, List<string> names, Dictionary<string, Tensor> weights) =>
        SafetensorsWriter.Write(path, names.Select(n => new SafetensorsWriteItem(n, SafetensorsDTypes.FromScalarType(weights[n].dtype), weights[n].shape, () => weights[n].alias())).ToList());

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
