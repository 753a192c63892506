using System.Text.Json.Nodes;
using LoraLego.Core.Formats;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Formats;

public class PeftAdapterReaderTests
{
    [Theory]
    [InlineData("a", 8, 16.0, false, 14)]
    [InlineData("b", 8, 16.0, false, 14)]
    [InlineData("c", 4, 8.0, false, 14)]
    [InlineData("d", 16, 32.0, true, 4)]
    public void Reads_config_fields_and_modules(string name, int r, double alpha, bool rs, int modules)
    {
        var adapter = PeftAdapterReader.Read(Fixtures.Adapter(name));
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.Adapter(name), "adapter_config.json")))!;
        Assert.Equal(name, adapter.Name);
        Assert.Equal((int)json["r"]!, adapter.Rank);
        Assert.Equal(r, adapter.Rank);
        Assert.Equal(alpha, adapter.Alpha);
        Assert.Equal(rs, adapter.UseRsLora);
        Assert.Equal(modules, adapter.ModuleCount);
        Assert.Equal(json["target_modules"]!.AsArray().Select(n => (string)n!).Order(), adapter.TargetModules.Order());
        double scaling = rs ? alpha / Math.Sqrt(r) : alpha / r;
        Assert.All(adapter.Modules, m =>
        {
            Assert.Equal(r, m.Rank);
            Assert.Equal(scaling, m.Scaling, 12);
            Assert.StartsWith("model.layers.", m.Key);
        });
    }

    [Theory]
    [InlineData("a")]
    [InlineData("b")]
    [InlineData("c")]
    [InlineData("d")]
    public void Effective_deltas_match_peft(string name)
    {
        var adapter = PeftAdapterReader.Read(Fixtures.Adapter(name));
        var expected = Fixtures.ReadDeltas(Fixtures.Adapter(name));
        Assert.Equal(expected.Keys.Order(), adapter.Modules.Select(m => m.Key).Order());
        foreach (var m in adapter.Modules)
        {
            using var delta = m.Delta();
            double err = (delta - expected[m.Key]).abs().max().item<float>();
            Assert.True(err < 1e-6, $"{m.Key}: max abs error {err}");
        }
    }

    [Fact]
    public void Shapes_come_from_the_header_without_loading()
    {
        var adapter = PeftAdapterReader.Read(Path.Combine(Fixtures.Adapter("a"), "adapter_model.safetensors"));
        var q = adapter.GetModule("model.layers.0.self_attn.k_proj")!;
        Assert.Equal(64, q.InFeatures);
        Assert.Equal(32, q.OutFeatures);
        Assert.Equal(new long[] { 8, 64 }, q.A.Shape);
        Assert.Equal(8L * (64 + 32), q.ParameterCount);
    }
}
