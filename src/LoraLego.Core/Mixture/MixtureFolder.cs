using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using static TorchSharp.torch;

namespace LoraLego.Core.Mixture;

/// <summary>
/// A mixture on disk: experts/&lt;name&gt;/ (each expert a PEFT adapter folder), gates.safetensors
/// (&lt;gate&gt;.weight [experts, width], &lt;gate&gt;.log_temperature [1] and, for prompt gates,
/// &lt;gate&gt;.query [width], float32) and
/// mixture.json (name, experts in gate order with their enabled flags, granularity, starting
/// temperature, gate keys, last training).
/// </summary>
public static class MixtureFolder
{
    public const string ManifestFileName = "mixture.json";
    public const string GatesFileName = "gates.safetensors";
    public const string ExpertsFolderName = "experts";
    private const string FormatName = "loralego-mole";
    private const int FormatVersion = 1;

    // A diverged training's NaN losses must still round-trip.
    private static readonly JsonSerializerOptions SummaryJson = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>
    /// Writes <paramref name="mixture"/> to <paramref name="path"/>. The folder appears whole or not
    /// at all; with <paramref name="overwrite"/> an existing folder is replaced whole.
    /// </summary>
    /// <exception cref="LoraException">The folder exists and <paramref name="overwrite"/> is false, or an expert's name cannot be a folder name.</exception>
    public static void Save(LoraMixture mixture, string path, bool overwrite = false)
    {
        ArgumentNullException.ThrowIfNull(mixture);
        string folder = System.IO.Path.GetFullPath(path);
        if (File.Exists(folder))
            throw new LoraException(LoraErrorKind.AlreadyExists, folder, "is a file; give a folder to write the mixture into");
        if (Directory.Exists(folder) && !overwrite && Directory.EnumerateFileSystemEntries(folder).Any())
            throw new LoraException(LoraErrorKind.AlreadyExists, folder, "already exists and is not empty; use -Force to replace it");
        CheckFolderNames(mixture);
        AtomicFile.ReplaceDirectory(folder, dir =>
        {
            foreach (var expert in mixture.Experts)
                PeftAdapterWriter.Write(expert, System.IO.Path.Combine(dir, ExpertsFolderName, expert.Name));
            SafetensorsWriter.Write(System.IO.Path.Combine(dir, GatesFileName), GateItems(mixture), new Dictionary<string, string> { ["format"] = "pt" });
            AtomicFile.Write(System.IO.Path.Combine(dir, ManifestFileName), stream =>
            {
                using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
                Manifest(mixture).WriteTo(json);
            });
        });
    }

    private static void CheckFolderNames(LoraMixture mixture)
    {
        var invalid = System.IO.Path.GetInvalidFileNameChars().Concat(['/', '\\']).ToHashSet();
        foreach (var expert in mixture.Experts)
            if (expert.Name is "." or ".." || expert.Name.Any(invalid.Contains))
                throw new LoraException(LoraErrorKind.InvalidArgument, expert.Name, "an expert's name names its folder in the mixture and cannot contain path characters; import it under another name");
        if (mixture.Experts.GroupBy(e => e.Name, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1) is { } clash)
            throw new LoraException(LoraErrorKind.InvalidArgument, clash.Key, "two experts' names differ only in case, which some file systems cannot keep apart; rename one");
    }

    private static List<SafetensorsWriteItem> GateItems(LoraMixture mixture) =>
        mixture.Gates.SelectMany(g => g.Parameters().Select(p =>
            new SafetensorsWriteItem($"{g.Key}.{p.Name}", SafetensorsDType.F32, p.Value.shape, () => p.Value.clone()))).ToList();

    private static JsonObject Manifest(LoraMixture mixture) => new()
    {
        ["format"] = FormatName,
        ["version"] = FormatVersion,
        ["name"] = mixture.Name,
        ["granularity"] = mixture.Granularity.ToString(),
        ["gate_input"] = mixture.GateInput.ToString(),
        ["temperature"] = mixture.Temperature,
        ["experts"] = new JsonArray(mixture.Experts.Select(e => (JsonNode)new JsonObject
        {
            ["name"] = e.Name,
            ["folder"] = $"{ExpertsFolderName}/{e.Name}",
            ["enabled"] = mixture.IsEnabled(e.Name),
        }).ToArray()),
        ["gates"] = new JsonArray(mixture.Gates.Select(g => (JsonNode)g.Key).ToArray()),
        ["training"] = mixture.Training is { } t ? JsonSerializer.SerializeToNode(t, SummaryJson) : null,
    };

    /// <summary>Reads a mixture folder written by <see cref="Save"/>.</summary>
    /// <exception cref="LoraException">A missing or malformed part, naming the file.</exception>
    public static LoraMixture Load(string path)
    {
        string folder = System.IO.Path.GetFullPath(path);
        string manifestPath = System.IO.Path.Combine(folder, ManifestFileName);
        if (!Directory.Exists(folder))
            throw new LoraException(LoraErrorKind.NotFound, folder, "no such mixture folder");
        if (!File.Exists(manifestPath))
            throw new LoraException(LoraErrorKind.NotFound, manifestPath, $"{ManifestFileName} not found: not a mixture folder");
        var manifest = ReadManifest(manifestPath);
        var experts = manifest.Experts.Select(e => PeftAdapterReader.Read(ExpertFolder(folder, e, manifestPath), e.Name)).ToList();
        var mixture = LoraMixture.Create(experts, manifest.Granularity, manifest.Temperature, manifest.Name, manifest.GateInput);
        try
        {
            if (!mixture.Gates.Select(g => g.Key).SequenceEqual(manifest.Gates))
                throw new LoraException(LoraErrorKind.InvalidData, manifestPath,
                    $"lists gates {string.Join(", ", manifest.Gates)} but its experts make {string.Join(", ", mixture.Gates.Select(g => g.Key))}");
            ReadGates(mixture, System.IO.Path.Combine(folder, GatesFileName));
            var disabled = manifest.Experts.Where(e => !e.Enabled).Select(e => e.Name).ToArray();
            if (disabled.Length > 0)
                mixture.Disable(disabled);
            mixture.Training = manifest.Training;
            mixture.Path = folder;
            return mixture;
        }
        catch
        {
            mixture.Dispose();
            throw;
        }
    }

    // An expert's folder must lie inside the mixture's: a manifest does not send the reader elsewhere on the disk.
    private static string ExpertFolder(string folder, ExpertEntry expert, string manifestPath)
    {
        string full = System.IO.Path.GetFullPath(System.IO.Path.Combine(folder, expert.Folder));
        if (!full.StartsWith(folder + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new LoraException(LoraErrorKind.InvalidData, manifestPath, $"expert '{expert.Name}' has folder '{expert.Folder}', outside the mixture folder");
        return full;
    }

    private sealed record ExpertEntry(string Name, string Folder, bool Enabled);

    private sealed record ManifestContent(string Name, MixtureGranularity Granularity, GateInput GateInput, double Temperature, List<ExpertEntry> Experts,
        List<string> Gates, MixtureTrainingSummary? Training);

    private static ManifestContent ReadManifest(string manifestPath)
    {
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(manifestPath)) as JsonObject
                ?? throw new LoraException(LoraErrorKind.InvalidData, manifestPath, "is not a JSON object");
            if (root["format"]?.GetValue<string>() != FormatName)
                throw new LoraException(LoraErrorKind.InvalidData, manifestPath, $"is not a LoraLego mixture (format is not '{FormatName}')");
            if (root["version"]?.GetValue<int>() is not FormatVersion)
                throw new LoraException(LoraErrorKind.Unsupported, manifestPath, $"mixture format version {root["version"]} is not {FormatVersion}");
            var granularity = NameOf<MixtureGranularity>(Required(root, "granularity", manifestPath).GetValue<string>(), "granularity", manifestPath);
            // Folders written before gate_input existed have gates that read the experts' outputs.
            var gateInput = NameOf<GateInput>(root["gate_input"]?.GetValue<string>() ?? nameof(GateInput.ExpertOutputs), "gate_input", manifestPath);
            var experts = Required(root, "experts", manifestPath).AsArray().Select((e, i) => e is JsonObject o ? new ExpertEntry(
                Required(o, "name", manifestPath).GetValue<string>(),
                Required(o, "folder", manifestPath).GetValue<string>(),
                o["enabled"]?.GetValue<bool>() ?? true) : throw new InvalidOperationException($"experts[{i}] is not an object")).ToList();
            var gates = Required(root, "gates", manifestPath).AsArray().Select((g, i) => g?.GetValue<string>() ?? throw new InvalidOperationException($"gates[{i}] is null")).ToList();
            var training = root["training"] is { } t ? t.Deserialize<MixtureTrainingSummary>(SummaryJson) : null;
            return new ManifestContent(Required(root, "name", manifestPath).GetValue<string>(), granularity, gateInput,
                Required(root, "temperature", manifestPath).GetValue<double>(), experts, gates, training);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or ArgumentException or NotSupportedException)
        {
            throw new LoraException(LoraErrorKind.InvalidData, manifestPath, $"is not a valid mixture manifest ({e.Message})", e);
        }
    }

    // Names only: Enum.TryParse would also take numbers, and values no member has.
    private static TEnum NameOf<TEnum>(string text, string property, string manifestPath) where TEnum : struct, Enum =>
        Enum.GetNames<TEnum>().Contains(text, StringComparer.Ordinal)
            ? Enum.Parse<TEnum>(text)
            : throw new LoraException(LoraErrorKind.InvalidData, manifestPath, $"{property} '{text}' is not one of {string.Join(", ", Enum.GetNames<TEnum>())}");

    private static JsonNode Required(JsonNode node, string property, string manifestPath) =>
        node[property] ?? throw new LoraException(LoraErrorKind.InvalidData, manifestPath, $"has no \"{property}\"");

    private static void ReadGates(LoraMixture mixture, string gatesPath)
    {
        using var file = SafetensorsFile.Open(gatesPath);
        foreach (var gate in mixture.Gates)
        {
            using var scope = NewDisposeScope();
            gate.SetParameters(gate.Parameters().Select(p => ReadGateTensor(file, $"{gate.Key}.{p.Name}", p.Value.shape)).ToList());
        }
    }

    private static Tensor ReadGateTensor(SafetensorsFile file, string name, long[] shape)
    {
        if (!file.Contains(name))
            throw new LoraException(LoraErrorKind.InvalidData, file.Path, $"tensor '{name}' is missing");
        var entry = file[name];
        if (!entry.Shape.SequenceEqual(shape))
            throw new LoraException(LoraErrorKind.ShapeMismatch, file.Path,
                $"tensor '{name}' is [{string.Join(", ", entry.Shape)}] but the experts make it [{string.Join(", ", shape)}]");
        using var raw = file.ReadTensor(name);
        FiniteCheck.Require(raw, file.Path, name);
        return raw.to(ScalarType.Float32);
    }
}
