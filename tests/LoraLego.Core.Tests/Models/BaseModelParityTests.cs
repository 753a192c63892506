using LoraLego.Core.Formats;
using LoraLego.Core.Models;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Models;

/// <summary>Logits of the runtime against transformers + PEFT on the tiny Llama fixture (float32, CPU).</summary>
public class BaseModelParityTests(ITestOutputHelper output)
{
    private static BaseModel LoadBase() => BaseModel.Load(GoldenLogits.BaseModelFolder, new BaseModelOptions { Device = Core.Compute.ComputeDevice.Cpu });

    private double CheckAgainstGolden(BaseModel model, string golden)
    {
        using var ids = GoldenLogits.InputIds();
        using var logits = model.Forward(ids);
        using var expected = GoldenLogits.Expected(golden);
        double error = GoldenLogits.MaxAbsError(logits, expected);
        output.WriteLine($"{golden} {string.Join("+", model.Adapters)}: max abs error {error:E2}");
        Assert.True(error < GoldenLogits.Tolerance, $"{golden}: max abs error {error}");
        return error;
    }

    [Fact]
    public void Base_logits_match_transformers()
    {
        using var model = LoadBase();
        CheckAgainstGolden(model, "base");
    }

    [Theory]
    [InlineData("a", AttachMode.Unmerged)]
    [InlineData("a", AttachMode.Merged)]
    [InlineData("b", AttachMode.Unmerged)]
    [InlineData("b", AttachMode.Merged)]
    [InlineData("c", AttachMode.Unmerged)]
    [InlineData("c", AttachMode.Merged)]
    [InlineData("d", AttachMode.Unmerged)]
    [InlineData("d", AttachMode.Merged)]
    public void Adapter_logits_match_peft(string name, AttachMode mode)
    {
        using var model = LoadBase();
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter(name)), mode: mode);
        CheckAgainstGolden(model, $"adapter/{name}");
    }

    // cat_da and svd_da carry PEFT's rsLoRA-first scaling quirk in their files; the golden
    // logits were computed from those same files, so they are compared as written.
    [Theory]
    [MemberData(nameof(GoldenLogits.Merges), MemberType = typeof(GoldenLogits))]
    public void Merge_logits_match_peft_unmerged_and_merged(string merge)
    {
        using var model = LoadBase();
        var adapter = PeftAdapterReader.Read(Fixtures.Merge(merge));
        model.Attach(adapter, mode: AttachMode.Unmerged);
        CheckAgainstGolden(model, $"merge/{merge}");
        model.DetachAll();
        model.Attach(adapter, mode: AttachMode.Merged);
        CheckAgainstGolden(model, $"merge/{merge}");
    }

    [Theory]
    [InlineData(AttachMode.Unmerged)]
    [InlineData(AttachMode.Merged)]
    public void Weighted_adapters_together_match_peft_cat_merge(AttachMode mode)
    {
        using var model = LoadBase();
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("a")), 0.5, mode);
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("b")), 0.3, mode);
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("c")), 0.2, mode);
        CheckAgainstGolden(model, "merge/cat_abc");
    }

    [Fact]
    public void Merged_and_unmerged_adapters_combine()
    {
        using var model = LoadBase();
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("a")), mode: AttachMode.Merged);
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("d")), mode: AttachMode.Unmerged);
        CheckAgainstGolden(model, "merge/cat_ad");
    }

    [Fact]
    public void Detach_restores_base_logits_exactly()
    {
        using var model = LoadBase();
        using var ids = GoldenLogits.InputIds();
        using var before = model.Forward(ids);
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("a")), 0.7, AttachMode.Merged);
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("b")), 1.3, AttachMode.Merged);
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("d")), mode: AttachMode.Unmerged);
        using (var adapted = model.Forward(ids))
            Assert.False(Identical(adapted, before));
        model.DetachAll();
        using var after = model.Forward(ids);
        Assert.True(Identical(after, before));
        Assert.Empty(model.Adapters);
        Assert.All(model.LinearLayers, l => Assert.False(l.IsMerged));
    }

    [Fact]
    public void Detaching_one_adapter_keeps_the_others()
    {
        using var model = LoadBase();
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("b")), mode: AttachMode.Merged);
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("a")), mode: AttachMode.Merged);
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("c")), mode: AttachMode.Unmerged);
        model.Detach("b");
        model.Detach("c");
        Assert.Equal(["a"], model.Adapters.Select(a => a.Name));
        CheckAgainstGolden(model, "adapter/a");
    }

    [Fact]
    public void A_batch_gives_the_logits_of_its_rows_alone()
    {
        using var model = LoadBase();
        model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("a")));
        using var ids = GoldenLogits.InputIds();
        using var batch = model.Forward(ids);
        for (int row = 0; row < ids.shape[0]; row++)
        {
            using var single = model.Forward(ids[row..(row + 1)]);
            double error = GoldenLogits.MaxAbsError(single, batch[row..(row + 1)]);
            output.WriteLine($"row {row}: max abs error {error:E2}");
            Assert.True(error < 1e-5, $"row {row}: {error}");
        }
    }

    private static bool Identical(Tensor a, Tensor b)
    {
        using var same = a.eq(b).all();
        return same.item<bool>();
    }

    [Fact]
    public void Run_copies_logits_out_row_major()
    {
        using var model = LoadBase();
        using var ids = GoldenLogits.InputIds();
        var rows = Enumerable.Range(0, 2).Select(r => ids[r].data<long>().ToArray()).ToArray();
        var result = model.Run(rows);
        using var expected = GoldenLogits.Expected("base");
        Assert.Equal([2, 16, 256], result.Shape);
        var values = result.ToArray();
        Assert.Equal(2 * 16 * 256, values.Length);
        Assert.Equal(expected[1, 3, 7].item<float>(), result[1, 3, 7], 1e-4f);
        Assert.Equal(values[(1 * 16 + 3) * 256 + 7], result[1, 3, 7]);
    }

    [Fact]
    public void A_prefix_gives_the_logits_of_the_longer_sequence()
    {
        using var model = LoadBase();
        using var ids = GoldenLogits.InputIds();
        using var full = model.Forward(ids);
        using var prefix = model.Forward(ids[.., ..5]);
        Assert.True(GoldenLogits.MaxAbsError(prefix, full[.., ..5]) < 1e-5);
    }
}
