using LoraLego.Core.Formats;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests;

/// <summary>Paths into tests/fixtures, found from the test binary by walking up to the repository.</summary>
public static class Fixtures
{
    public static string Root { get; } = FindRoot();

    public static string PeftTinyLlama => Path.Combine(Root, "tests", "fixtures", "peft-tiny-llama");

    public static string Adapter(string name) => Path.Combine(PeftTinyLlama, "adapters", name);

    public static string Merge(string name) => Path.Combine(PeftTinyLlama, "merges", name);

    /// <summary>Tokenizer files (sentencepiece, gpt2-bpe) whose ids fit the tiny llama's vocabulary of 256.</summary>
    public static string TinyTokenizer(string kind) => Path.Combine(Root, "tests", "fixtures", "tiny-tokenizer", kind);

    /// <summary>The multi-task merge benchmark: a tiny llama, four skill adapters, labelled train/eval rows, PEFT's scores.</summary>
    public static string Skillbench => Path.Combine(Root, "tests", "fixtures", "skillbench");

    public static string Malformed => Path.Combine(Root, "tests", "fixtures", "malformed");

    /// <summary>The reference deltas PEFT wrote, keyed by module path (model.layers.0...).</summary>
    public static Dictionary<string, Tensor> ReadDeltas(string folder)
    {
        using var file = SafetensorsFile.Open(Path.Combine(folder, "delta.safetensors"));
        return file.Entries.ToDictionary(
            e => e.Name["base_model.model.".Length..^".delta".Length],
            e => file.ReadTensor(e.Name));
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "LoraLego.psd1")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("LoraLego.psd1 not found above " + AppContext.BaseDirectory);
    }
}
