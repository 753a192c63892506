using LoraLego.Module.Tests.Hosting;

namespace LoraLego.Module.Tests;

[Collection(SessionCollection.Name)]
public class OptimizeLoraMergeTests(PowerShellSession ps)
{
    // Two skills' first rows, one file per skill, passed as a wildcard.
    private const string Setup = """
        $sb = [IO.Path]::Combine($Fixtures, 'skillbench')
        $data = [IO.Path]::Combine($Scratch, 'optimize-data')
        $null = [IO.Directory]::CreateDirectory($data)
        foreach ($skill in 'swap', 'complement') { [IO.File]::WriteAllLines("$data/$skill.jsonl", [string[]][Linq.Enumerable]::Take([IO.File]::ReadLines("$sb/train/$skill.jsonl"), 6)) }
        $model = Import-BaseModel "$sb/base" -Device Cpu
        $adapters = Import-Lora "$sb/adapters/swap", "$sb/adapters/complement"
        """;

    [Fact]
    public void It_emits_the_merged_adapter_with_its_search_history_and_records_the_choice()
    {
        var result = ps.Run(Setup + """

            $best = $adapters | Optimize-LoraMerge -Model $model -Data "$data/*.jsonl" -Method Cat -Budget 3 -Epochs 1 -Seed 2
            $best.Name
            $best.SearchHistory.Count
            $best.SearchHistory.Where{ $_.IsBest }[-1].Stage
            $best.Config.Json['loralego']['method'].GetValue[string]()
            $model.Adapters.Count
            """);
        result.AssertNoErrors();
        Assert.Equal("optimized", result.Output[0].BaseObject);
        Assert.Equal(3, result.Output[1].BaseObject);
        Assert.Contains(result.Output[2].BaseObject, new object[] { "start", "weights", "module scales" });
        Assert.Equal("optimize", result.Output[3].BaseObject);
        Assert.Equal(0, result.Output[4].BaseObject);
        string table = ps.Render("$best.SearchHistory");
        Assert.Contains("ValidLoss", table);
        Assert.Contains("Cat w=[0.500, 0.500]", table);
    }

    [Fact]
    public void A_missing_data_file_is_an_error_naming_it()
    {
        var result = ps.Run(Setup + "\n$adapters | Optimize-LoraMerge -Model $model -Data \"$data/none-such.jsonl\"");
        Assert.Equal("LoraLego.NotFound,LoraLego.Commands.OptimizeLoraMergeCommand", result.Errors.Single().FullyQualifiedErrorId);
        Assert.Contains("none-such.jsonl", result.Errors.Single().ToString());
    }
}
