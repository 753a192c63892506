using LoraLego.Core.Formats;
using LoraLego.Core.Adapters;
using LoraLego.Core.Merging;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Merging;

public class MergeBehaviourTests
{
    private static MergeInput Input(string name, double weight = 1.0) => new(MergeFixtures.Adapter(name), weight);

    [Fact]
    public void A_module_missing_from_some_adapters_is_merged_from_the_others_and_reported()
    {
        var log = new List<string>();
        var merged = StandardMerge.Merge([Input("a"), Input("d")], MergeMethod.Cat, new MergeOptions { Verbose = log.Add });
        const string key = "model.layers.1.mlp.down_proj";
        Assert.Contains(log, l => l == $"{key}: only in a; merged from those");
        Assert.Equal(10, log.Count(l => l.EndsWith("only in a; merged from those")));
        using var delta = merged.GetModule(key)!.Delta();
        using var expected = MergeFixtures.Adapter("a").GetModule(key)!.Delta();
        Assert.True(MergeFixtures.RelativeError(delta, expected) < 1e-6);
        Assert.Equal(8, merged.GetModule(key)!.Rank);
        Assert.Equal(24, merged.GetModule("model.layers.1.self_attn.q_proj")!.Rank);
    }

    [Fact]
    public void Cat_with_a_negative_weight_subtracts_exactly()
    {
        var merged = StandardMerge.Merge([Input("a"), Input("b", -1)], MergeMethod.Cat);
        foreach (var module in merged.Modules)
        {
            using var delta = module.Delta();
            using var expected = MergeFixtures.Adapter("a").GetModule(module.Key)!.Delta() - MergeFixtures.Adapter("b").GetModule(module.Key)!.Delta();
            Assert.True(MergeFixtures.RelativeError(delta, expected) < 1e-6, module.Key);
        }
    }

    [Fact]
    public void A_single_adapter_is_merged_linearly_as_in_peft()
    {
        var log = new List<string>();
        var merged = StandardMerge.Merge([Input("c", 0.5)], MergeMethod.Svd, new MergeOptions { Rank = 2, Verbose = log.Add });
        Assert.Contains(log, l => l.Contains("runs as 'linear'"));
        Assert.All(merged.Modules, m => Assert.Equal(4, m.Rank));
        foreach (var module in merged.Modules)
        {
            using var delta = module.Delta();
            using var expected = MergeFixtures.Adapter("c").GetModule(module.Key)!.Delta().mul(0.5);
            Assert.True(MergeFixtures.RelativeError(delta, expected) < 1e-6, module.Key);
        }
    }

    [Fact]
    public void Progress_reports_every_module_in_order_and_cancellation_stops_between_modules()
    {
        var seen = new List<MergeProgress>();
        var merged = StandardMerge.Merge([Input("a"), Input("b")], MergeMethod.Linear, new MergeOptions { Progress = seen.Add });
        Assert.Equal(Enumerable.Range(0, merged.ModuleCount), seen.Select(p => p.ModuleIndex));
        Assert.All(seen, p => Assert.Equal(merged.ModuleCount, p.ModuleCount));
        Assert.Equal(merged.Modules.Select(m => m.Key), seen.Select(p => p.ModuleKey));

        using var cancel = new CancellationTokenSource();
        int calls = 0;
        var options = new MergeOptions
        {
            CancellationToken = cancel.Token,
            Progress = p => { calls++; if (p.ModuleIndex == 2) cancel.Cancel(); },
        };
        Assert.Throws<OperationCanceledException>(() => StandardMerge.Merge([Input("a"), Input("b")], MergeMethod.Linear, options));
        Assert.Equal(3, calls);
    }

    [Fact]
    public void Adapters_that_shape_a_module_differently_are_refused_naming_the_module()
    {
        var a = MergeFixtures.Adapter("a");
        const string key = "model.layers.0.self_attn.q_proj";
        var foreign = LoraAdapter.Create("foreign", a.Config, [LoraModule.FromFactors(key, zeros(8, 48), zeros(64, 8), 2.0)]);
        var e = Assert.Throws<LoraException>(() => StandardMerge.Merge([new MergeInput(a), new MergeInput(foreign)], MergeMethod.Cat));
        Assert.Equal(LoraErrorKind.ShapeMismatch, e.Kind);
        Assert.Equal(key, e.Target);
        Assert.Contains("'foreign' as 64x48", e.Detail);
    }

    public static TheoryData<MergeMethod, MergeOptions, string> RefusedOptions => new()
    {
        { MergeMethod.Ties, new MergeOptions(), "needs a density" },
        { MergeMethod.Svd, new MergeOptions { Density = 0.5 }, "does not trim" },
        { MergeMethod.MagnitudePrune, new MergeOptions { Density = 1.5 }, "outside (0, 1]" },
        { MergeMethod.DareTies, new MergeOptions { Density = 0 }, "outside (0, 1]" },
        { MergeMethod.MagnitudePruneSvd, new MergeOptions { Density = 0.5, MajoritySign = MajoritySign.Frequency }, "elects no signs" },
        { MergeMethod.Ties, new MergeOptions { Density = 0.5, Seed = 1 }, "draws nothing at random" },
        { MergeMethod.Cat, new MergeOptions { Rank = 4 }, "does not truncate" },
        { MergeMethod.Linear, new MergeOptions { Clamp = 0.9 }, "does not truncate" },
        { MergeMethod.Svd, new MergeOptions { Rank = 0 }, "at least 1" },
        { MergeMethod.Svd, new MergeOptions { Clamp = 1.5 }, "quantile" },
    };

    [Theory]
    [MemberData(nameof(RefusedOptions))]
    public void Options_a_method_cannot_use_are_refused(MergeMethod method, MergeOptions options, string reason)
    {
        var e = Assert.Throws<LoraException>(() => StandardMerge.Merge([Input("a"), Input("b")], method, options));
        Assert.Equal(LoraErrorKind.InvalidArgument, e.Kind);
        Assert.Contains(reason, e.Detail);
    }

    [Theory]
    [InlineData(MergeMethod.Linear)]
    [InlineData(MergeMethod.DareLinear)]
    public void Factorwise_methods_refuse_negative_weights(MergeMethod method)
    {
        var options = method == MergeMethod.Linear ? new MergeOptions() : new MergeOptions { Density = 0.5, Seed = 1 };
        var e = Assert.Throws<LoraException>(() => StandardMerge.Merge([Input("a"), Input("b", -0.5)], method, options));
        Assert.Equal(LoraErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("negative weight", e.Detail);
    }

    [Fact]
    public void Empty_inputs_and_non_finite_weights_are_refused()
    {
        Assert.Equal(LoraErrorKind.InvalidArgument, Assert.Throws<LoraException>(() => StandardMerge.Merge([], MergeMethod.Cat)).Kind);
        Assert.Equal(LoraErrorKind.InvalidArgument, Assert.Throws<LoraException>(() => StandardMerge.Merge([Input("a", double.NaN)], MergeMethod.Cat)).Kind);
    }

    [Fact]
    public void Peft_names_round_trip_and_unknown_names_are_refused()
    {
        foreach (var method in Enum.GetValues<MergeMethod>())
            Assert.Equal(method, MergeMethods.FromPeftName(method.PeftName()));
        Assert.Equal(MergeMethod.DareTiesSvd, MergeMethods.FromPeftName("DARE_TIES_SVD"));
        Assert.Equal(LoraErrorKind.InvalidArgument, Assert.Throws<LoraException>(() => MergeMethods.FromPeftName("slerp")).Kind);
    }

    [Theory]
    [InlineData(SafetensorsDType.F16)]
    [InlineData(SafetensorsDType.BF16)]
    public void Half_precision_inputs_give_a_half_precision_merge_with_the_same_update(SafetensorsDType dtype)
    {
        string dir = Directory.CreateTempSubdirectory("loralego-half-").FullName;
        try
        {
            var half = new[] { "a", "b" }.Select(n =>
            {
                PeftAdapterWriter.Write(MergeFixtures.Adapter(n), Path.Combine(dir, n), dtype);
                return new MergeInput(PeftAdapterReader.Read(Path.Combine(dir, n)));
            }).ToList();
            var merged = StandardMerge.Merge(half, MergeMethod.Cat);
            Assert.Equal(dtype, merged.DType);
            var full = StandardMerge.Merge([Input("a"), Input("b")], MergeMethod.Cat);
            foreach (var m in merged.Modules)
            {
                using var x = m.Delta();
                using var y = full.GetModule(m.Key)!.Delta();
                double rel = (x - y).norm().item<float>() / y.norm().item<float>();
                Assert.True(rel < (dtype == SafetensorsDType.F16 ? 2e-3 : 1.5e-2), $"{m.Key}: {rel}");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
