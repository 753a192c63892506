using LoraLego.Core;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using LoraLego.Core.Mixture;
using LoraLego.Core.Models;

namespace LoraLego.Fuzz;

/// <summary>
/// One reader under test: its seed corpus and how one input runs through it. An input is written
/// where the reader expects its file (the readers take paths), then read the whole way: headers,
/// every tensor, every row.
/// </summary>
public abstract class FuzzTarget
{
    public abstract string Name { get; }

    /// <summary>Bytes [0, Focus(input)) hold the structure mutations should aim at.</summary>
    public virtual int Focus(byte[] input) => input.Length;

    public abstract IReadOnlyList<byte[]> Seeds();

    /// <summary>Runs one input; returns normally when it was accepted, throws when it was refused (or crashed).</summary>
    public abstract void Run(byte[] input, string workFolder);

    public static IReadOnlyList<FuzzTarget> All(string repoRoot) =>
    [
        new SafetensorsTarget(repoRoot),
        new ConfigTarget(repoRoot),
        new JsonlTarget(repoRoot),
        new ManifestTarget(repoRoot),
    ];

    protected static IEnumerable<string> FilesNamed(string root, string name) =>
        Directory.EnumerateFiles(root, name, SearchOption.AllDirectories).Order(StringComparer.Ordinal);

    // An adapter's every factor is read (and so checked), as a merge or an export would.
    protected static void ReadWhole(LoraAdapter adapter)
    {
        foreach (var m in adapter.Modules)
        {
            m.A.Load().Dispose();
            m.B.Load().Dispose();
        }
        foreach (var t in adapter.ExtraTensors)
            t.Load().Dispose();
        _ = adapter.Config.RankPattern.Count + adapter.ParameterCount;
    }
}

/// <summary>adapter_model.safetensors (beside a valid config), read by PeftAdapterReader with every tensor loaded.</summary>
public sealed class SafetensorsTarget(string repoRoot) : FuzzTarget
{
    public override string Name => "safetensors";

    public override int Focus(byte[] input) =>
        input.Length >= 8 && BitConverter.ToUInt64(input, 0) is var n && n < (ulong)input.Length ? 8 + (int)n : input.Length;

    public override IReadOnlyList<byte[]> Seeds() =>
        FilesNamed(Path.Combine(repoRoot, "tests", "fixtures", "malformed"), "*.safetensors")
            .Concat(FilesNamed(Path.Combine(repoRoot, "tests", "fixtures", "peft-tiny-llama", "adapters"), "*.safetensors"))
            .Select(File.ReadAllBytes).ToList();

    public override void Run(byte[] input, string workFolder)
    {
        File.WriteAllBytes(Path.Combine(workFolder, PeftAdapterReader.ModelFileName), input);
        File.WriteAllText(Path.Combine(workFolder, PeftAdapterReader.ConfigFileName), """{"peft_type": "LORA", "r": 2, "lora_alpha": 4}""");
        using (var file = SafetensorsFile.Open(Path.Combine(workFolder, PeftAdapterReader.ModelFileName)))
            foreach (var entry in file.Entries)
                file.ReadTensor(entry.Name).Dispose();
        ReadWhole(PeftAdapterReader.Read(workFolder));
    }
}

/// <summary>adapter_config.json (beside the valid safetensors file of the malformed corpus), read by PeftAdapterReader.</summary>
public sealed class ConfigTarget(string repoRoot) : FuzzTarget
{
    private readonly byte[] _model = File.ReadAllBytes(Path.Combine(repoRoot, "tests", "fixtures", "malformed", "valid", PeftAdapterReader.ModelFileName));

    public override string Name => "config";

    public override IReadOnlyList<byte[]> Seeds() =>
        FilesNamed(Path.Combine(repoRoot, "tests", "fixtures"), PeftAdapterReader.ConfigFileName)
            .Select(File.ReadAllBytes).DistinctBy(Convert.ToBase64String).ToList();

    public override void Run(byte[] input, string workFolder)
    {
        File.WriteAllBytes(Path.Combine(workFolder, PeftAdapterReader.ModelFileName), _model);
        File.WriteAllBytes(Path.Combine(workFolder, PeftAdapterReader.ConfigFileName), input);
        var adapter = PeftAdapterReader.Read(workFolder);
        ReadWhole(adapter);
        // What a re-export would write must be a config the reader takes again.
        new AdapterConfig(PeftAdapterWriter.Validate(adapter, workFolder));
    }
}

/// <summary>A JSONL evaluation file, every row read by JsonlTokenReader for the tiny llama (vocabulary 256).</summary>
public sealed class JsonlTarget(string repoRoot) : FuzzTarget, IDisposable
{
    private readonly Lazy<BaseModel> _model = new(() => BaseModel.Load(Path.Combine(repoRoot, "tests", "fixtures", "peft-tiny-llama", "base")));

    public override string Name => "jsonl";

    public override IReadOnlyList<byte[]> Seeds()
    {
        var seeds = FilesNamed(Path.Combine(repoRoot, "examples", "data"), "*.jsonl")
            .Concat(FilesNamed(Path.Combine(repoRoot, "tests", "fixtures", "skillbench", "eval"), "*.jsonl").Take(2))
            .Select(f => File.ReadLines(f).Take(6))
            .Select(lines => System.Text.Encoding.UTF8.GetBytes(string.Join("\n", lines) + "\n")).ToList();
        seeds.Add("{\"input_ids\": [1, 2, 3], \"labels\": [-100, 2, 3]}\n\n{\"text\": \"hello\"}\n{\"prompt\": \"a\", \"completion\": \"b\"}\n"u8.ToArray());
        return seeds;
    }

    public override void Run(byte[] input, string workFolder)
    {
        string path = Path.Combine(workFolder, "rows.jsonl");
        File.WriteAllBytes(path, input);
        foreach (var row in new JsonlTokenReader(path, _model.Value).ReadRows())
            _ = row.ScoredTokens;
    }

    public void Dispose()
    {
        if (_model.IsValueCreated)
            _model.Value.Dispose();
    }
}

/// <summary>mixture.json of a mixture folder (two experts, their gates), loaded by MixtureFolder.</summary>
public sealed class ManifestTarget(string repoRoot) : FuzzTarget
{
    private string? _template;

    public override string Name => "manifest";

    public override IReadOnlyList<byte[]> Seeds()
    {
        var seeds = new List<byte[]> { File.ReadAllBytes(Path.Combine(Template(), MixtureFolder.ManifestFileName)) };
        var text = System.Text.Encoding.UTF8.GetString(seeds[0]);
        seeds.Add(System.Text.Encoding.UTF8.GetBytes(text.Replace("\"Model\"", "\"Layer\"")));
        seeds.Add(System.Text.Encoding.UTF8.GetBytes(text.Replace("\"gate_input\"", "\"gate_input_old\"")));
        return seeds;
    }

    // A saved mixture of the fixture adapters a and b; each run copies it and replaces the manifest.
    private string Template()
    {
        if (_template is not null)
            return _template;
        string folder = Path.Combine(Path.GetTempPath(), $"loralego-fuzz-mixture-{Environment.ProcessId}");
        if (Directory.Exists(folder))
            Directory.Delete(folder, recursive: true);
        var adapters = new[] { "a", "b" }.Select(n => PeftAdapterReader.Read(Path.Combine(repoRoot, "tests", "fixtures", "peft-tiny-llama", "adapters", n))).ToList();
        using var mixture = LoraMixture.Create(adapters, name: "fuzz");
        MixtureFolder.Save(mixture, folder);
        return _template = folder;
    }

    public override void Run(byte[] input, string workFolder)
    {
        string folder = Path.Combine(workFolder, "mixture");
        if (!Directory.Exists(folder))
            CopyFolder(Template(), folder);
        File.WriteAllBytes(Path.Combine(folder, MixtureFolder.ManifestFileName), input);
        using var mixture = MixtureFolder.Load(folder);
        foreach (var expert in mixture.Experts)
            ReadWhole(expert);
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (var dir in Directory.EnumerateDirectories(from))
            CopyFolder(dir, Path.Combine(to, Path.GetFileName(dir)));
    }
}
