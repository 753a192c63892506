using LoraLego.Core.Formats;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Models;

/// <summary>The logits transformers + PEFT produced for the tiny Llama fixture, and helpers to compare against them.</summary>
public static class GoldenLogits
{
    public const double Tolerance = 1e-4;

    public static string BaseModelFolder => Path.Combine(Fixtures.PeftTinyLlama, "base");

    /// <summary>The 2 x 16 int64 input ids every golden logit was computed for.</summary>
    public static Tensor InputIds() => Read("golden_logits.safetensors", "input_ids");

    /// <summary>'base', 'adapter/a', 'merge/cat_abc', ...: from whichever golden file holds it.</summary>
    public static Tensor Expected(string name)
    {
        using var main = SafetensorsFile.Open(Path.Combine(Fixtures.PeftTinyLlama, "golden_logits.safetensors"));
        if (main.Contains(name))
            return main.ReadTensor(name);
        return Read("golden_logits_extra.safetensors", name);
    }

    /// <summary>Every merge folder, all of which have golden logits.</summary>
    public static IEnumerable<object[]> Merges() =>
        Directory.GetDirectories(Path.Combine(Fixtures.PeftTinyLlama, "merges")).Select(Path.GetFileName).Order().Select(n => new object[] { n! });

    public static double MaxAbsError(Tensor actual, Tensor expected)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var diff = actual.to(ScalarType.Float32, CPU).sub(expected).abs().max();
        return diff.item<float>();
    }

    private static Tensor Read(string file, string name)
    {
        using var golden = SafetensorsFile.Open(Path.Combine(Fixtures.PeftTinyLlama, file));
        return golden.ReadTensor(name);
    }
}
