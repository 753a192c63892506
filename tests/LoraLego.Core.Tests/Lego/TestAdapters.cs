using System.Text.Json.Nodes;
using LoraLego.Core.Adapters;
using LoraLego.Core.Clustering;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Lego;

/// <summary>One module of an in-memory adapter: its key, shape, rank and alpha.</summary>
public sealed record ModuleSpec(string Key, int In, int Out, int Rank, double Alpha);

/// <summary>Adapters built in memory from a seed, and the comparisons the LoRA-LEGO tests share.</summary>
public static class TestAdapters
{
    public static LoraAdapter Fixture(string name) => PeftAdapterReader.Read(Fixtures.Adapter(name));

    /// <summary>
    /// Random factors in [-0.1, 0.1); the config describes the modules through r, lora_alpha,
    /// rank_pattern and alpha_pattern, as a PEFT adapter with per-module ranks would.
    /// </summary>
    public static LoraAdapter Random(string name, ulong seed, IReadOnlyList<ModuleSpec> specs, bool useRsLora = false)
    {
        var random = new SplitMix64(seed);
        var modules = specs.Select(s => new LoraModule(s.Key, s.Rank, s.Alpha, useRsLora,
            LoraTensor.FromTensor($"{s.Key}.lora_A.weight", Values(random, s.Rank, s.In)),
            LoraTensor.FromTensor($"{s.Key}.lora_B.weight", Values(random, s.Out, s.Rank)))).ToList();
        var json = AdapterConfigDescription.Describe(new JsonObject { ["peft_type"] = "LORA" }, modules, useRsLora);
        var config = new AdapterConfig(json);
        Assert.All(modules, m => Assert.Equal(m.Rank, config.RankFor(m.Key)));
        return new LoraAdapter(name, null, "PEFT", config, modules);
    }

    public static readonly ModuleSpec[] TwoModules =
    [
        new("model.layers.0.self_attn.q_proj", 12, 10, 4, 8),
        new("model.layers.0.mlp.down_proj", 9, 12, 4, 8),
    ];

    /// <summary>
    /// The same adapter with one module's units rewritten: A row i and B column i become those of
    /// unit order[i], each multiplied by sign[i].
    /// </summary>
    public static LoraAdapter Rearranged(LoraAdapter adapter, string key, int[] order, int[] sign)
    {
        var modules = adapter.Modules.Select(m =>
        {
            if (m.Key != key)
                return m;
            using var scope = NewDisposeScope();
            var index = tensor(order.Select(i => (long)i).ToArray());
            var signs = tensor(sign.Select(s => (float)s).ToArray());
            var a = m.A.LoadFloat32().index_select(0, index) * signs.unsqueeze(1);
            var b = m.B.LoadFloat32().index_select(1, index) * signs.unsqueeze(0);
            return new LoraModule(m.Key, m.Rank, m.Alpha, m.UseRsLora,
                LoraTensor.FromTensor(m.A.Name, a), LoraTensor.FromTensor(m.B.Name, b), m.FanInFanOut);
        }).ToList();
        return new LoraAdapter(adapter.Name, null, adapter.Format, adapter.Config, modules);
    }

    /// <summary>sum_i w_i dW_i for one module over the inputs that have it.</summary>
    public static Tensor WeightedSum(IEnumerable<MergeInput> inputs, string key)
    {
        using var scope = NewDisposeScope();
        Tensor? sum = null;
        foreach (var input in inputs)
            if (input.Adapter.GetModule(key) is { } m)
                sum = sum is null ? m.Delta() * input.Weight : sum + m.Delta() * input.Weight;
        return sum!.MoveToOuterDisposeScope();
    }

    public static double MaxAbsDiff(Tensor x, Tensor y)
    {
        using var diff = (x - y).abs().max();
        return diff.item<float>();
    }

    /// <summary>Asserts the two adapters have the same modules with bit-identical factors and scaling.</summary>
    public static void AssertIdentical(LoraAdapter expected, LoraAdapter actual)
    {
        Assert.Equal(expected.Modules.Select(m => m.Key), actual.Modules.Select(m => m.Key));
        foreach (var m in expected.Modules)
        {
            var other = actual.GetModule(m.Key)!;
            Assert.Equal(m.Scaling, other.Scaling);
            Assert.Equal(m.A.ToArray(), other.A.ToArray());
            Assert.Equal(m.B.ToArray(), other.B.ToArray());
        }
    }

    private static Tensor Values(SplitMix64 random, int rows, int columns) =>
        tensor(Enumerable.Range(0, rows * columns).Select(_ => (float)(0.2 * random.NextDouble() - 0.1)).ToArray(), [rows, columns]);
}
