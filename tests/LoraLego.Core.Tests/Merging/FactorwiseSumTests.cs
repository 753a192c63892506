using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Merging;

/// <summary>The span-loop linear merge gives the bytes of the libtorch form (stack, multiply, sum, convert).</summary>
public class FactorwiseSumTests
{
    private const string Key = "model.layers.0.self_attn.q_proj";

    [Theory]
    [InlineData(SafetensorsDType.F16, 3)]
    [InlineData(SafetensorsDType.BF16, 5)]
    [InlineData(SafetensorsDType.F16, 8)]
    [InlineData(SafetensorsDType.F32, 15)]
    public void The_span_sum_is_the_libtorch_sum(SafetensorsDType dtype, int adapters)
    {
        var inputs = Enumerable.Range(0, adapters).Select(i => Input(i, dtype, weight: 0.3 + i * 0.37)).ToList();
        var present = ModuleInputs.Present(Key, inputs);
        var combiner = TaskCombiner.For(MergeMethod.Linear.Recipe(), new MergeOptions());
        Assert.True(FactorwiseSum.Covers(present, combiner, CPU, dtype));
        var fast = FactorwiseSum.Merge(Key, present, dtype);
        using var module = ModuleInputs.Load(Key, inputs, 1, CPU);
        var factors = FactorwiseMerge.Merge(module, combiner, null);
        var reference = LoraModule.FromFactors(Key, factors.A, factors.B, 1.0, storeAs: dtype);
        using (Tensor a = fast.A.Load(), b = fast.B.Load(), refA = reference.A.Load(), refB = reference.B.Load())
        {
            Assert.Equal(refA.bytes.ToArray(), a.bytes.ToArray());
            Assert.Equal(refB.bytes.ToArray(), b.bytes.ToArray());
        }
        Assert.Equal(reference.Alpha, fast.Alpha);
    }

    [Fact]
    public void Sixteen_adapters_trimming_and_partial_blocks_go_through_libtorch()
    {
        var inputs = Enumerable.Range(0, 16).Select(i => Input(i, SafetensorsDType.F16, 1)).ToList();
        var linear = TaskCombiner.For(MergeMethod.Linear.Recipe(), new MergeOptions());
        Assert.False(FactorwiseSum.Covers(ModuleInputs.Present(Key, inputs), linear, CPU, SafetensorsDType.F16));
        var ties = TaskCombiner.For(MergeMethod.Ties.Recipe(), new MergeOptions());
        Assert.False(FactorwiseSum.Covers(ModuleInputs.Present(Key, inputs.Take(3).ToList()), ties, CPU, SafetensorsDType.F16));
        var partial = Enumerable.Range(0, 3).Select(i => Input(i, SafetensorsDType.F16, 1, rows: 37)).ToList();
        Assert.False(FactorwiseSum.Covers(ModuleInputs.Present(Key, partial), linear, CPU, SafetensorsDType.F16));
    }

    // 48 x 80 at rank 4: factors of whole blocks of libtorch's sum (192 and 320 entries).
    private static MergeInput Input(int seed, SafetensorsDType dtype, double weight, int rows = 48)
    {
        var g = manual_seed(seed);
        using var a = randn(4, 80, generator: g);
        using var b = randn(rows, 4, generator: g).mul_(0.01);
        var module = LoraModule.FromFactors(Key, a, b, 1.0 + seed * 0.5, storeAs: dtype);
        return new MergeInput(new LoraAdapter($"t{seed}", null, "PEFT", new AdapterConfig(new System.Text.Json.Nodes.JsonObject { ["r"] = 4, ["lora_alpha"] = 8 }), [module]), weight);
    }
}
