using System.Text.Json.Nodes;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using TorchSharp;

namespace LoraLego.Core.Tests.Adapters;

public class AdapterConfigDescriptionTests
{
    private static LoraModule Module(string key, int rank, double scaling) =>
        LoraModule.FromFactors(key, torch.randn(rank, 6), torch.randn(4, rank), scaling);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Mixed_ranks_and_scalings_are_described_by_patterns_that_read_back_exactly(bool rsLora)
    {
        var modules = new[]
        {
            Module("model.layers.0.self_attn.q_proj", 8, 2.0),
            Module("model.layers.1.self_attn.q_proj", 8, 2.0),
            Module("model.layers.0.self_attn.v_proj", 16, 0.5),
            Module("model.layers.1.self_attn.v_proj", 8, 1.25),
        };
        var template = new JsonObject { ["base_model_name_or_path"] = "x", ["task_type"] = "CAUSAL_LM" };
        var json = AdapterConfigDescription.Describe(template, modules, rsLora);
        var config = new AdapterConfig(json);
        Assert.Equal(8, config.R);
        Assert.Equal("CAUSAL_LM", (string)json["task_type"]!);
        foreach (var m in modules)
        {
            Assert.Equal(m.Rank, config.RankFor(m.Key));
            double scaling = rsLora ? config.AlphaFor(m.Key) / Math.Sqrt(m.Rank) : config.AlphaFor(m.Key) / m.Rank;
            Assert.Equal(m.Scaling, scaling, 12);
        }
        Assert.True(AdapterConfigDescription.Describes(config, modules));
        Assert.Equal(["q_proj", "v_proj"], config.TargetModules);
    }

    [Fact]
    public void Rank_pattern_keys_match_at_a_dot_boundary_from_the_end()
    {
        var config = new AdapterConfig(new JsonObject
        {
            ["r"] = 8,
            ["lora_alpha"] = 16,
            ["rank_pattern"] = new JsonObject { ["v_proj"] = 4, ["model.layers.1.self_attn.q_proj"] = 2 },
        });
        Assert.Equal(4, config.RankFor("model.layers.0.self_attn.v_proj"));
        Assert.Equal(8, config.RankFor("model.layers.0.self_attn.xv_proj"));
        Assert.Equal(2, config.RankFor("model.layers.1.self_attn.q_proj"));
        Assert.Equal(8, config.RankFor("model.layers.0.self_attn.q_proj"));
    }

    [Fact]
    public void An_adapter_with_a_changed_module_exports_a_config_that_describes_it()
    {
        var source = PeftAdapterReader.Read(Fixtures.Adapter("c"));
        var modules = source.Modules.Select((m, i) => i == 0 ? Module(m.Key, 3, 0.7) : m).ToList();
        var changed = new LoraAdapter("changed", null, "PEFT", source.Config, modules);
        var written = new AdapterConfig(PeftAdapterWriter.BuildConfig(changed));
        Assert.Equal(4, written.R);
        Assert.Equal(3, written.RankFor(modules[0].Key));
        Assert.Equal(0.7 * 3, written.AlphaFor(modules[0].Key), 12);
        Assert.Equal(8, written.AlphaFor(modules[1].Key));
    }
}
