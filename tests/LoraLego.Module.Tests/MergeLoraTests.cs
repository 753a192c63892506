using System.Management.Automation;
using LoraLego.Module.Tests.Hosting;

namespace LoraLego.Module.Tests;

[Collection(SessionCollection.Name)]
public class MergeLoraTests(PowerShellSession ps)
{
    private const string Setup = "$ad = [IO.Path]::Combine($Fixtures, 'peft-tiny-llama', 'adapters')\n";

    private Dictionary<string, double[]> Deltas(string pipeline)
    {
        var result = ps.Run(Setup + "$adapter = " + pipeline + "\n" + AdapterDeltas.Extract);
        result.AssertNoErrors();
        return AdapterDeltas.FromOutput(result.Output);
    }

    private static void AssertMatches(Dictionary<string, double[]> actual, string fixture, double factor = 1.0, double tolerance = 1e-5)
    {
        var expected = AdapterDeltas.Reference(Path.Combine(Paths.PeftTinyLlama, "merges", fixture));
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (key, e) in expected)
        {
            double err = AdapterDeltas.RelativeError(actual[key], e, factor);
            Assert.True(err < tolerance, $"{fixture} {key}: relative error {err}");
        }
    }

    [Theory]
    [InlineData("linear_ab", "'a', 'b'", "-Method Linear -Weight 0.6, 0.4")]
    [InlineData("cat_abc", "'a', 'b', 'c'", "-Method Cat -Weight 0.5, 0.3, 0.2")]
    [InlineData("svd_abc", "'a', 'b', 'c'", "-Method Svd")]
    [InlineData("ties_ab_freq", "'a', 'b'", "-Method Ties -Weight 0.6, 0.4 -Density 0.3 -MajoritySign Frequency")]
    [InlineData("magprune_svd_abc", "'a', 'b', 'c'", "-Method MagnitudePruneSvd -Density 0.5")]
    [InlineData("ties_svd_abc", "'a', 'b', 'c'", "-Method TiesSvd -Density 0.5")]
    public void Pipeline_merges_reproduce_peft(string fixture, string adapters, string arguments) =>
        AssertMatches(Deltas($"({adapters}).ForEach{{ \"$ad/$_\" }} | Import-Lora | Merge-Lora {arguments}"), fixture);

    [Fact]
    public void An_rslora_first_adapter_gets_the_intended_update_not_peft_sqrt_r_times_it() =>
        AssertMatches(Deltas("Import-Lora \"$ad/d\", \"$ad/a\" | Merge-Lora -Method Cat"), "cat_da", factor: Math.Sqrt(24));

    [Fact]
    public void Lego_with_one_cluster_per_unit_and_no_reweighting_is_the_cat_merge() =>
        AssertMatches(Deltas("""
            Import-Lora "$ad/a", "$ad/b", "$ad/c" | Split-Msu -Weight 0.5, 0.3, 0.2 | Invoke-RankCluster -K 20 | Merge-Lora -ParameterReweight:$false -OutputReweight:$false
            """), "cat_abc");

    [Fact]
    public void The_one_call_lego_merge_equals_the_step_by_step_pipeline()
    {
        var oneCall = Deltas("Import-Lora \"$ad/a\", \"$ad/b\", \"$ad/c\" | Merge-Lora -Method Lego -Rank 8 -Seed 3");
        var steps = Deltas("Import-Lora \"$ad/a\", \"$ad/b\", \"$ad/c\" | Split-Msu | Invoke-RankCluster -K 8 -Seed 3 | Merge-Lora");
        Assert.Equal(14, oneCall.Count);
        foreach (var (key, d) in oneCall)
            Assert.True(AdapterDeltas.RelativeError(steps[key], d) < 1e-6, key);
    }

    [Fact]
    public void Lego_result_has_rank_k_records_its_choices_and_round_trips_through_export()
    {
        string output = Path.Combine(ps.Scratch, "lego-" + Guid.NewGuid().ToString("N"));
        var result = ps.Run(Setup + """
            $merged = Import-Lora "$ad/a", "$ad/b", "$ad/c" | Merge-Lora -Rank 8 -Name abc
            $back = $merged | Export-Lora -Path $out -PassThru
            $merged.Name; $merged.ModuleCount; $merged.Rank; $back.Rank
            $merged.Config.Json['loralego'].ToJsonString()
            $adapter = $back
            """ + AdapterDeltas.Extract, new Dictionary<string, object?> { ["out"] = output });
        result.AssertNoErrors();
        Assert.Equal(["abc", "14", "8", "8"], result.Output.Take(4).Select(o => o.ToString()));
        Assert.Contains("\"parameter_reweight\":true", result.Output[4].ToString());
        Assert.Contains("\"k\":8", result.Output[4].ToString());
        Assert.Equal(14, AdapterDeltas.FromOutput(result.Output.Skip(5)).Count);
    }

    [Fact]
    public void Verbose_tells_per_module_k_inertia_and_modules_only_some_adapters_have()
    {
        var lego = ps.Run(Setup + "Import-Lora \"$ad/a\", \"$ad/c\" | Split-Msu | Invoke-RankCluster -K 4 -Verbose");
        lego.AssertNoErrors();
        Assert.Contains(lego.Verbose, v => v.Contains("k 4, inertia"));
        var cat = ps.Run(Setup + "Import-Lora \"$ad/a\", \"$ad/d\" | Merge-Lora -Method Cat -Verbose");
        Assert.Contains(cat.Verbose, v => v.Contains("model.layers.0.mlp.down_proj: only in a"));
    }

    [Fact]
    public void Fewer_units_than_k_keeps_them_all_with_a_warning()
    {
        var result = ps.Run(Setup + "(Import-Lora \"$ad/c\" | Split-Msu -Module '*layers.0.self_attn.q_proj' | Invoke-RankCluster -K 6).K");
        result.AssertNoErrors();
        Assert.Equal(4, result.Output.Single().BaseObject);
        Assert.Contains(result.Warnings, w => w.Contains("fewer than k = 6"));
    }

    [Theory]
    [InlineData("Merge-Lora -Method Cat")]
    [InlineData("Split-Msu | Invoke-RankCluster -K 4 | Merge-Lora")]
    [InlineData("New-LoraMixture")]
    public void Adapters_of_different_base_models_are_merged_or_mixed_with_a_warning(string command)
    {
        string other = Path.Combine(ps.Scratch, "b-other-base");
        Directory.CreateDirectory(other);
        string source = Path.Combine(Paths.PeftTinyLlama, "adapters", "b");
        File.Copy(Path.Combine(source, "adapter_model.safetensors"), Path.Combine(other, "adapter_model.safetensors"), overwrite: true);
        File.WriteAllText(Path.Combine(other, "adapter_config.json"),
            File.ReadAllText(Path.Combine(source, "adapter_config.json")).Replace("\"../../base\"", "\"other/base\""));
        var same = ps.Run(Setup + $"Import-Lora \"$ad/a\", \"$ad/b\" | {command} | ForEach-Object Name");
        same.AssertNoErrors();
        Assert.DoesNotContain(same.Warnings, w => w.Contains("base models"));
        var mixed = ps.Run(Setup + $"Import-Lora \"$ad/a\", '{other}' | {command} | ForEach-Object Name");
        mixed.AssertNoErrors();
        Assert.Single(mixed.Output);
        Assert.Contains(mixed.Warnings, w => w.Contains("2 different base models (a: ../../base; b-other-base: other/base)"));
    }

    [Theory]
    [InlineData("Merge-Lora -Method Ties -Weight 1, 2, 3", "-Weight has 3 values for 2 adapters")]
    [InlineData("Merge-Lora -Method Ties -Density 0.5 -Restarts 3", "-Restarts applies to -Method Lego only")]
    [InlineData("Merge-Lora -Method Lego -Density 0.5", "-Density applies to the PEFT methods")]
    [InlineData("Merge-Lora -Method Ties", "needs a density")]
    public void Bad_arguments_are_invalid_argument_errors(string merge, string message)
    {
        var result = ps.Run(Setup + $"Import-Lora \"$ad/a\", \"$ad/b\" | {merge}");
        var error = Assert.Single(result.Errors);
        Assert.Equal(ErrorCategory.InvalidArgument, error.CategoryInfo.Category);
        Assert.Contains(message, error.Exception.Message);
    }

    // -Method mirrors Core's MergeMethod by name (plus Lego), so every PEFT method must be there and nothing else.
    [Fact]
    public void Every_peft_method_is_a_merge_method_of_the_cmdlet()
    {
        var result = ps.Run("""
            ([Enum]::GetNames([LoraLego.Commands.LoraMergeMethod]).Where{ $_ -ne 'Lego' } -join ',') -eq ([Enum]::GetNames([LoraLego.Core.Merging.MergeMethod]) -join ',')
            """);
        result.AssertNoErrors();
        Assert.Equal("True", result.Output.Single().ToString());
    }

    [Fact]
    public void Linear_over_different_ranks_is_refused_naming_the_module()
    {
        var error = Assert.Single(ps.Run(Setup + "Import-Lora \"$ad/a\", \"$ad/c\" | Merge-Lora -Method Linear").Errors);
        Assert.Contains("needs equal ranks", error.Exception.Message);
        Assert.Contains("model.layers.", error.Exception.Message);
    }

    [Fact]
    public void Join_of_split_gives_back_the_adapter()
    {
        var original = Deltas("Import-Lora \"$ad/d\"");
        var joined = Deltas("Import-Lora \"$ad/d\" | Split-Msu | Join-Msu -Name d2");
        foreach (var (key, d) in original)
            Assert.True(AdapterDeltas.RelativeError(joined[key], d) < 1e-6, key);
    }

    [Fact]
    public void Split_msu_emits_units_module_by_module_across_adapters()
    {
        var result = ps.Run(Setup + "Import-Lora \"$ad/a\", \"$ad/c\" | Split-Msu -Module '*layers.1.mlp.*' | ForEach-Object { \"$($_.ModuleKey) $($_.Adapter)\" }");
        result.AssertNoErrors();
        var lines = result.Output.Select(o => o.ToString()).ToList();
        Assert.Equal(3 * 12, lines.Count);
        var order = lines.Distinct().ToList();
        Assert.Equal(6, order.Count);
        Assert.Equal(["a", "c", "a", "c", "a", "c"], order.Select(l => l.Split(' ')[1]));
    }
}
