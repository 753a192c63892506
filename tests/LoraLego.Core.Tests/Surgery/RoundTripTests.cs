using LoraLego.Core.Formats;
using LoraLego.Core.Models;
using LoraLego.Core.Surgery;
using LoraLego.Core.Tests.Models;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Surgery;

/// <summary>
/// Bake an adapter into the fixture base, export it, read it back as a fine-tuned model and extract the adapter
/// again: the logits are PEFT's for base+adapter and the extracted updates are the adapter's.
/// </summary>
public sealed class RoundTripTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "loralego-roundtrip-" + Guid.NewGuid().ToString("N"));

    private static BaseModel LoadBase() => BaseModel.Load(GoldenLogits.BaseModelFolder, new BaseModelOptions { Device = Compute.ComputeDevice.Cpu });

    private static BaseModel Load(string folder) => BaseModel.Load(folder, new BaseModelOptions { Device = Compute.ComputeDevice.Cpu });

    [Theory]
    [InlineData("a")]
    [InlineData("b")]
    [InlineData("c")]
    [InlineData("d")]
    public void Exported_model_has_peft_logits_and_gives_the_adapter_back(string name)
    {
        var adapter = PeftAdapterReader.Read(Fixtures.Adapter(name));
        using (var model = LoadBase())
        {
            model.Attach(adapter, mode: AttachMode.Merged);
            BaseModelWriter.Write(model, _folder);
        }
        using var fineTuned = Load(_folder);
        using var baseModel = LoadBase();
        using (var ids = GoldenLogits.InputIds())
        using (var logits = fineTuned.Forward(ids))
        using (var expected = GoldenLogits.Expected($"adapter/{name}"))
        {
            double error = GoldenLogits.MaxAbsError(logits, expected);
            output.WriteLine($"{name}: exported model's logits, max abs error {error:E2}");
            Assert.True(error < 1e-4, $"max abs error {error}");
        }
        var extracted = LoraExtractor.Extract(fineTuned, baseModel, new ExtractionOptions { Rule = RankRule.Fixed(adapter.Rank), Device = Compute.ComputeDevice.Cpu }, "extracted");
        Assert.Equal(adapter.Modules.Select(m => m.Key).Order(), extracted.Modules.Select(m => m.Key).Order());
        double worst = 0;
        foreach (var module in adapter.Modules)
        {
            using var scope = NewDisposeScope();
            var original = module.Delta();
            var back = extracted.GetModule(module.Key)!.Delta();
            worst = Math.Max(worst, back.sub(original).norm().item<float>() / original.norm().item<float>());
        }
        output.WriteLine($"{name}: extracted updates, worst relative error {worst:E2}");
        Assert.True(worst < 1e-4, $"worst relative error {worst}");
    }

    [Fact]
    public void Energy_extraction_keeps_the_fewest_ranks_that_hold_the_fraction_of_each_update()
    {
        var adapter = PeftAdapterReader.Read(Fixtures.Adapter("d"));
        using var tuned = LoadBase();
        using var baseModel = LoadBase();
        tuned.Attach(adapter, mode: AttachMode.Merged);
        var changes = new List<ModuleRankChange>();
        var extracted = LoraExtractor.Extract(tuned, baseModel,
            new ExtractionOptions { Rule = RankRule.Energy(0.9, 16), Device = Compute.ComputeDevice.Cpu }, "d90", changes.Add);
        foreach (var change in changes)
        {
            using var scope = NewDisposeScope();
            var s = linalg.svdvals(adapter.GetModule(change.Module)!.Delta().to_type(ScalarType.Float64)).data<double>().ToArray();
            double total = s.Sum(v => v * v);
            Assert.True(s.Take(change.NewRank).Sum(v => v * v) >= 0.9 * total * (1 - 1e-6), change.ToString());
            Assert.True(s.Take(change.NewRank - 1).Sum(v => v * v) < 0.9 * total, change.ToString());
            Assert.Equal(change.NewRank, extracted.GetModule(change.Module)!.Rank);
        }
        Assert.Contains(changes, c => c.NewRank < adapter.Rank);
    }

    [Fact]
    public void Sharded_export_writes_an_index_and_loads_the_same_weights()
    {
        using (var model = LoadBase())
        {
            model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("a")), mode: AttachMode.Merged);
            var files = BaseModelWriter.Write(model, _folder, maxShardBytes: 100_000);
            Assert.True(files.Count > 1);
        }
        Assert.True(File.Exists(Path.Combine(_folder, "model.safetensors.index.json")));
        Assert.False(File.Exists(Path.Combine(_folder, "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(_folder, "generation_config.json")));
        using var sharded = Load(_folder);
        using var ids = GoldenLogits.InputIds();
        using var logits = sharded.Forward(ids);
        using var expected = GoldenLogits.Expected("adapter/a");
        Assert.True(GoldenLogits.MaxAbsError(logits, expected) < 1e-4);
    }

    [Fact]
    public void Half_precision_export_says_so_in_the_config()
    {
        using (var model = LoadBase())
            BaseModelWriter.Write(model, _folder, SafetensorsDType.BF16);
        using var file = SafetensorsFile.Open(Path.Combine(_folder, "model.safetensors"));
        Assert.All(file.Entries, e => Assert.Equal(SafetensorsDType.BF16, e.DType));
        Assert.Contains("\"bfloat16\"", File.ReadAllText(Path.Combine(_folder, "config.json")));
    }

    [Fact]
    public void Unmerged_adapters_are_refused_rather_than_left_out()
    {
        using var model = LoadBase();
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("a")));
        var e = Assert.Throws<LoraException>(() => BaseModelWriter.Write(model, _folder));
        Assert.Equal(LoraErrorKind.InvalidArgument, e.Kind);
        Assert.False(Directory.Exists(_folder));
    }

    [Fact]
    public void A_model_equal_to_its_base_has_nothing_to_extract()
    {
        using var one = LoadBase();
        using var other = LoadBase();
        var e = Assert.Throws<LoraException>(() => LoraExtractor.Extract(one, other, new ExtractionOptions { Device = Compute.ComputeDevice.Cpu }, "none"));
        Assert.Equal(LoraErrorKind.InvalidArgument, e.Kind);
    }

    public void Dispose()
    {
        if (Directory.Exists(_folder))
            Directory.Delete(_folder, recursive: true);
    }
}
