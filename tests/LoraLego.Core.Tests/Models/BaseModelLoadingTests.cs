using System.Text.Json.Nodes;
using LoraLego.Core.Adapters;
using LoraLego.Core.Compute;
using LoraLego.Core.Formats;
using LoraLego.Core.Models;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Models;

/// <summary>Config handling, architectures and weight layouts, on variants of the tiny Llama fixture.</summary>
public sealed class BaseModelLoadingTests : IDisposable
{
    private readonly ModelVariants _variants = new();

    private static BaseModel Load(string folder, ModelDType dtype = ModelDType.Float32) =>
        BaseModel.Load(folder, new BaseModelOptions { Device = ComputeDevice.Cpu, DType = dtype });

    private static double ErrorAgainstBase(BaseModel model)
    {
        using var ids = GoldenLogits.InputIds();
        using var logits = model.Forward(ids);
        using var expected = GoldenLogits.Expected("base");
        return GoldenLogits.MaxAbsError(logits, expected);
    }

    [Fact]
    public void Reads_the_config()
    {
        using var model = Load(GoldenLogits.BaseModelFolder);
        Assert.Equal("LlamaForCausalLM", model.Architecture);
        Assert.Equal(16, model.Config.HeadDim);
        Assert.Equal(2, model.Config.KeyValueHeadCount);
        Assert.Equal(new RopeSettings(10000, "default"), model.Config.Rope);
        Assert.False(model.Config.TieWordEmbeddings);
        Assert.Equal(2 * 7 + 1, model.LinearLayers.Count);
        Assert.Equal(32, model.GetLinear("model.layers.1.self_attn.v_proj")!.OutFeatures);
    }

    [Fact]
    public void Weights_are_read_on_first_use()
    {
        using var model = Load(GoldenLogits.BaseModelFolder);
        Assert.Equal(0, model.LoadedParameterCount);
        Assert.Equal(2 * 256 * 64 + 64 + 2 * (2 * 64 + 64 * 64 * 2 + 32 * 64 * 2 + 3 * 128 * 64), model.ParameterCount);
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("d")), mode: AttachMode.Merged);
        // d targets q_proj (64 x 64) and v_proj (32 x 64) of both layers; merging reads just those.
        Assert.Equal(2 * (64 * 64 + 32 * 64), model.LoadedParameterCount);
        ErrorAgainstBase(model);
        Assert.Equal(model.ParameterCount, model.LoadedParameterCount);
    }

    [Fact]
    public void Sharded_weights_give_the_same_logits()
    {
        using var model = Load(_variants.Create("sharded", shards: 3));
        Assert.True(ErrorAgainstBase(model) < GoldenLogits.Tolerance);
    }

    [Fact]
    public void Qwen2_reads_qkv_biases()
    {
        var zeroBias = _variants.Create("qwen-zero", c => c["architectures"] = new JsonArray("Qwen2ForCausalLM"), AddQkvBiases(0));
        using (var model = Load(zeroBias))
        {
            Assert.True(model.Config.QkvBias);
            Assert.False(model.Config.OutputBias);
            Assert.True(ErrorAgainstBase(model) < GoldenLogits.Tolerance);
        }
        using var biased = Load(_variants.Create("qwen-bias", c => c["architectures"] = new JsonArray("Qwen2ForCausalLM"), AddQkvBiases(0.5f)));
        Assert.True(ErrorAgainstBase(biased) > 1e-3);
    }

    private static Action<Dictionary<string, Tensor>> AddQkvBiases(float value) => weights =>
    {
        foreach (var name in weights.Keys.Where(n => n.EndsWith("_proj.weight") && n.Contains("self_attn") && !n.Contains("o_proj")).ToList())
            weights[name.Replace(".weight", ".bias")] = full(weights[name].shape[0], value);
    };

    [Fact]
    public void Mistral_without_a_window_is_llama_and_with_one_limits_attention()
    {
        using (var plain = Load(_variants.Create("mistral", c => c["architectures"] = new JsonArray("MistralForCausalLM"))))
            Assert.True(ErrorAgainstBase(plain) < GoldenLogits.Tolerance);
        using var windowed = Load(_variants.Create("mistral-window", c =>
        {
            c["architectures"] = new JsonArray("MistralForCausalLM");
            c["sliding_window"] = 4;
        }));
        using var ids = GoldenLogits.InputIds();
        using var logits = windowed.Forward(ids);
        using var expected = GoldenLogits.Expected("base");
        Assert.True(GoldenLogits.MaxAbsError(logits[.., ..4], expected[.., ..4]) < GoldenLogits.Tolerance);
        Assert.True(GoldenLogits.MaxAbsError(logits[.., 4..], expected[.., 4..]) > 1e-4);
    }

    [Fact]
    public void Tied_embeddings_need_no_lm_head_and_refuse_merging_into_it()
    {
        string folder = _variants.Create("tied", c => c["tie_word_embeddings"] = true, w => w.Remove("lm_head.weight"));
        using var model = Load(folder);
        using var ids = GoldenLogits.InputIds();
        using var logits = model.Forward(ids);
        Assert.Equal(new long[] { 2, 16, 256 }, logits.shape);
        var head = LoraModule.FromFactors("lm_head", randn(2, 64), randn(256, 2), 1.0);
        var adapter = InMemoryAdapter("head", head);
        var e = Assert.Throws<LoraException>(() => model.Attach(adapter, mode: AttachMode.Merged));
        Assert.Equal(LoraErrorKind.Unsupported, e.Kind);
        model.Attach(adapter);
        using var adapted = model.Forward(ids);
        Assert.True(GoldenLogits.MaxAbsError(adapted, logits) > 1e-3);
    }

    [Fact]
    public void Untied_model_without_lm_head_names_the_folder()
    {
        string folder = _variants.Create("no-head", editWeights: w => w.Remove("lm_head.weight"));
        var e = Assert.Throws<LoraException>(() => Load(folder));
        Assert.Contains("lm_head.weight", e.Detail);
        Assert.Equal(folder, e.Target);
    }

    [Theory]
    [InlineData(ModelDType.BFloat16, 0.05)]
    [InlineData(ModelDType.Float16, 0.01)]
    public void Half_precision_weights_stay_close(ModelDType dtype, double tolerance)
    {
        using var model = Load(GoldenLogits.BaseModelFolder, dtype);
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("a")), mode: AttachMode.Merged);
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("d")));
        using var ids = GoldenLogits.InputIds();
        using var logits = model.Forward(ids);
        Assert.Equal(ScalarType.Float32, logits.dtype);
        using var expected = GoldenLogits.Expected("merge/cat_ad");
        Assert.True(GoldenLogits.MaxAbsError(logits, expected) < tolerance);
    }

    [Theory]
    [InlineData("GPT2LMHeadModel", "architecture GPT2LMHeadModel is not supported")]
    [InlineData(null, "names no architecture")]
    public void Unsupported_architectures_are_refused(string? architecture, string message)
    {
        string folder = _variants.Create("arch", c => c["architectures"] = architecture is null ? null : new JsonArray(architecture));
        var e = Assert.Throws<LoraException>(() => Load(folder));
        Assert.Equal(LoraErrorKind.Unsupported, e.Kind);
        Assert.Equal(Path.Combine(folder, "config.json"), e.Target);
        Assert.Contains(message, e.Detail);
    }

    [Theory]
    [InlineData("hidden_size")]
    [InlineData("num_attention_heads")]
    public void A_missing_size_is_named(string field)
    {
        var e = Assert.Throws<LoraException>(() => Load(_variants.Create("missing", c => c.Remove(field))));
        Assert.Equal(LoraErrorKind.Unsupported, e.Kind);
        Assert.Contains($"'{field}'", e.Detail);
    }

    [Fact]
    public void An_unknown_rope_type_is_refused()
    {
        var e = Assert.Throws<LoraException>(() => Load(_variants.Create("yarn", c => c["rope_parameters"] = new JsonObject { ["rope_theta"] = 10000.0, ["rope_type"] = "yarn", ["factor"] = 4.0 })));
        Assert.Equal(LoraErrorKind.Unsupported, e.Kind);
        Assert.Contains("rope_type 'yarn'", e.Detail);
    }

    [Fact]
    public void Older_configs_keep_rope_theta_at_the_top_and_scaling_in_rope_scaling()
    {
        var config = new JsonObject
        {
            ["rope_theta"] = 500000.0,
            ["rope_scaling"] = new JsonObject
            {
                ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0,
                ["original_max_position_embeddings"] = 8192,
            },
        };
        var rope = RopeSettings.Parse(config, "config.json");
        Assert.Equal(new RopeSettings(500000, "llama3", 8, 1, 4, 8192), rope);
        var plain = new RopeSettings(500000, "default").InverseFrequencies(128);
        var scaled = rope.InverseFrequencies(128);
        // Wavelengths under 8192/4 tokens are kept, those over 8192 slowed by the factor, the band between interpolated.
        for (int i = 0; i < plain.Length; i++)
        {
            double wavelength = 2 * Math.PI / plain[i];
            if (wavelength < 2048)
                Assert.Equal(plain[i], scaled[i]);
            else if (wavelength > 8192)
                Assert.Equal(plain[i] / 8, scaled[i], 15);
            else
                Assert.InRange(scaled[i], plain[i] / 8, plain[i]);
        }
        Assert.Equal(new RopeSettings(10000, "default"), RopeSettings.Parse(new JsonObject(), "config.json"));
    }

    [Fact]
    public void An_adapter_for_another_model_is_refused_before_anything_changes()
    {
        using var model = Load(GoldenLogits.BaseModelFolder);
        var fits = LoraModule.FromFactors("model.layers.0.self_attn.q_proj", randn(2, 64), randn(64, 2), 1.0);
        var wrongShape = LoraModule.FromFactors("model.layers.1.self_attn.k_proj", randn(2, 64), randn(64, 2), 1.0);
        var e = Assert.Throws<LoraException>(() => model.Attach(InMemoryAdapter("wrong", fits, wrongShape), mode: AttachMode.Merged));
        Assert.Equal(LoraErrorKind.ShapeMismatch, e.Kind);
        Assert.Contains("model.layers.1.self_attn.k_proj", e.Detail);
        var missing = LoraModule.FromFactors("model.layers.9.self_attn.q_proj", randn(2, 64), randn(64, 2), 1.0);
        Assert.Throws<LoraException>(() => model.Attach(InMemoryAdapter("missing", missing)));
        Assert.Empty(model.Adapters);
        Assert.All(model.LinearLayers, l => Assert.False(l.IsMerged));
        Assert.True(ErrorAgainstBase(model) < GoldenLogits.Tolerance);
    }

    [Fact]
    public void Attaching_the_same_name_twice_is_refused()
    {
        using var model = Load(GoldenLogits.BaseModelFolder);
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("a")));
        var e = Assert.Throws<LoraException>(() => model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("a")), mode: AttachMode.Merged));
        Assert.Equal(LoraErrorKind.AlreadyExists, e.Kind);
    }

    [Fact]
    public void Token_ids_outside_the_vocabulary_are_refused()
    {
        using var model = Load(GoldenLogits.BaseModelFolder);
        var e = Assert.Throws<LoraException>(() => model.Run([[1, 2, 256]]));
        Assert.Equal(LoraErrorKind.InvalidArgument, e.Kind);
        Assert.Throws<LoraException>(() => model.Run([[1, 2], [3]]));
    }

    private static LoraAdapter InMemoryAdapter(string name, params LoraModule[] modules) =>
        LoraAdapter.Create(name, PeftAdapterReader.Read(Fixtures.Adapter("a")).Config, modules);

    public void Dispose() => _variants.Dispose();
}
