using LoraLego.Core.Adapters;
using LoraLego.Core.Compute;
using LoraLego.Core.Merging;
using LoraLego.Core.Surgery;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Kernels;

/// <summary>
/// The kernels written over a panel give the same bits at both widths, so a merge's bytes do not depend on whether the
/// core has 512-bit vectors.
/// </summary>
public unsafe class FloatPanelTests
{
    [WidePanelFact]
    public void Update_tiles_have_the_same_bits_from_both_panels()
    {
        var inputs = Enumerable.Range(0, 3).Select(i =>
        {
            var g = manual_seed(40 + i);
            var module = LoraModule.FromFactors("model.layers.0.mlp.up_proj", randn(12, 75, generator: g), randn(50, 12, generator: g), 0.7 + i);
            var config = new AdapterConfig(new System.Text.Json.Nodes.JsonObject { ["r"] = 12, ["lora_alpha"] = 12 });
            return new MergeInput(new LoraAdapter($"p{i}", null, "PEFT", config, [module]));
        }).ToList();
        using var module = ModuleInputs.Load("model.layers.0.mlp.up_proj", inputs, 1, CPU);
        var tiles = UpdateTiles.Of(module.Members, wide: true);
        var narrow = new float[UpdateTiles.TileRows * UpdateTiles.TileColumns];
        var wide = new float[narrow.Length];
        int compared = 0;
        for (int adapter = 0; adapter < tiles.Count; adapter++)
            for (int row = 0; row < tiles.PaddedRows; row += UpdateTiles.TileRows)
                for (int column = 0; column < tiles.PaddedColumns; column += UpdateTiles.TileColumns)
                {
                    fixed (float* n = narrow, w = wide)
                    {
                        tiles.Tile<Panel256>(adapter, row, column, n);
                        tiles.Tile<Panel512>(adapter, row, column, w);
                    }
                    Assert.Equal(Bits(narrow), Bits(wide));
                    compared += narrow.Count(v => v != 0);
                }
        Assert.True(compared > 3 * 50 * 75 / 2, $"only {compared} nonzero entries compared");
    }

    [WidePanelFact]
    public void Range_finder_products_have_the_same_bits_from_both_panels()
    {
        const int rows = 37, cols = 45, width = 2 * RowBlockProducts.Width;
        var random = new Random(9);
        var a = Enumerable.Range(0, rows * cols).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
        var x = Enumerable.Range(0, cols * width).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
        var y = Enumerable.Range(0, rows * width).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
        var (timesNarrow, timesWide) = (new float[rows * width], new float[rows * width]);
        var (zNarrow, zWide) = (new float[width * cols], new float[width * cols]);
        fixed (float* pa = a, px = x, py = y, tn = timesNarrow, tw = timesWide, zn = zNarrow, zw = zWide)
        {
            RowBlockProducts.RowsTimes<Panel256>(pa, rows, cols, 0, rows, px, width, tn);
            RowBlockProducts.RowsTimes<Panel512>(pa, rows, cols, 0, rows, px, width, tw);
            RowBlockProducts.AddTransposedTimes<Panel256>(pa, rows, cols, py, width, zn);
            RowBlockProducts.AddTransposedTimes<Panel512>(pa, rows, cols, py, width, zw);
        }
        Assert.Equal(Bits(timesNarrow), Bits(timesWide));
        Assert.Equal(Bits(zNarrow), Bits(zWide));
        // Against a float64 reference, so a kernel that computed nothing would not pass.
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < width; j++)
            {
                double expected = Enumerable.Range(0, cols).Sum(c => (double)a[r * cols + c] * x[c * width + j]);
                Assert.Equal(expected, timesWide[r * width + j], 1e-4);
            }
    }

    [WidePanelFact]
    public void Fused_combinations_have_the_same_bytes_on_both_vector_widths()
    {
        // 701 x 803: over 2^19 entries, so the cuts are sampled and their brackets collected; partial tiles at both edges.
        const string key = "model.layers.0.mlp.down_proj";
        var inputs = Enumerable.Range(0, 4).Select(i =>
        {
            var g = manual_seed(60 + i);
            var module = LoraModule.FromFactors(key, randn(4 + 4 * i, 803, generator: g).div_(28), randn(701, 4 + 4 * i, generator: g).mul_(0.01), 2.0);
            var config = new AdapterConfig(new System.Text.Json.Nodes.JsonObject { ["r"] = 4 + 4 * i, ["lora_alpha"] = 8 + 8 * i });
            return new MergeInput(new LoraAdapter($"w{i}", null, "PEFT", config, [module]), i == 1 ? -0.4 : 0.3 + 0.2 * i, i == 2 ? 0.3 : null);
        }).ToList();
        using var module = ModuleInputs.Load(key, inputs, 0.5, CPU);
        var cases = new (MergeMethod Method, MajoritySign? Sign)[]
        {
            (MergeMethod.TiesSvd, MajoritySign.Total), (MergeMethod.TiesSvd, MajoritySign.Frequency), (MergeMethod.MagnitudePruneSvd, null),
            (MergeMethod.DareTiesSvd, MajoritySign.Total), (MergeMethod.DareLinearSvd, null),
        };
        foreach (var (method, sign) in cases)
        {
            var combiner = TaskCombiner.For(method.Recipe(), new MergeOptions { MajoritySign = sign });
            using var wide = FusedCombination.Combine(module, combiner, 2, s => s, random: RandomDrop.ForModule(7, key), wide: true);
            using var narrow = FusedCombination.Combine(module, combiner, 2, s => s, random: RandomDrop.ForModule(7, key), wide: false);
            Assert.True(wide.bytes.SequenceEqual(narrow.bytes), $"{method} {sign}: {wide.ne(narrow).sum().item<long>()} entries differ");
            Assert.True(wide.ne(0).sum().item<long>() > 701 * 803 / 10, $"{method} {sign}: almost every entry trimmed");
        }
    }

    private static int[] Bits(float[] values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();
}
