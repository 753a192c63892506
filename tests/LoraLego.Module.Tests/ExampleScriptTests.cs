using LoraLego.Module.Tests.Hosting;

namespace LoraLego.Module.Tests;

[Collection(SessionCollection.Name)]
public class ExampleScriptTests(PowerShellSession ps)
{
    [Fact]
    public void Inspect_and_export_runs_on_the_bundled_adapters()
    {
        string output = Path.Combine(ps.Scratch, "example-out");
        var result = ps.Run("& ([IO.Path]::Combine($RepoRoot, 'examples', 'inspect-and-export.ps1')) -OutDir $o", new Dictionary<string, object?> { ["o"] = output });
        result.AssertNoErrors();
        Assert.Contains(result.Output, o => o.ToString() == "d: scaling 8 (r 16, alpha 32, rsLoRA True)");
        Assert.True(File.Exists(Path.Combine(output, "a-bf16", "adapter_model.safetensors")));
        Assert.Equal("BF16", result.Output[^1].Properties["DType"].Value.ToString());
    }

    [Fact]
    public void Merge_lego_runs_the_pipeline_and_the_one_call_form_agrees()
    {
        string output = Path.Combine(ps.Scratch, "example-lego");
        var result = ps.Run("& ([IO.Path]::Combine($RepoRoot, 'examples', 'merge-lego.ps1')) -OutDir $o", new Dictionary<string, object?> { ["o"] = output });
        result.AssertNoErrors();
        Assert.Contains(result.Output, o => o.ToString() == "one call equals step by step: True");
        Assert.True(File.Exists(Path.Combine(output, "lego-abc", "adapter_model.safetensors")));
        // Merged step by step from clusters, it still names adapter a's base model and task.
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(output, "lego-abc", "adapter_config.json")))!;
        Assert.Equal("../../base", config["base_model_name_or_path"]!.ToString());
        Assert.Equal("CAUSAL_LM", config["task_type"]!.ToString());
        Assert.Equal(["lego-abc", "ties-svd-abc", "cat-abc"],
            result.Output.Where(o => o.BaseObject.GetType().Name == "LoraAdapter").Select(o => o.Properties["Name"].Value.ToString()));
    }

    [Fact]
    public void Measure_merges_reports_a_loss_for_the_base_and_every_candidate()
    {
        var result = ps.Run("& ([IO.Path]::Combine($RepoRoot, 'examples', 'measure-merges.ps1'))");
        result.AssertNoErrors();
        var lines = result.Output.Select(o => o.ToString()).Where(l => l.Contains(" loss ")).ToList();
        Assert.Equal(["base", "a", "b", "linear-ab", "cat-ab", "lego-ab"], lines.Select(l => l.Split(' ')[0]));
        Assert.All(lines, l => Assert.Matches(@"loss 5\.\d{4}\s+perplexity 2\d\d\.\d\d", l));
    }

    [Fact]
    public void TorchSharp_loads_from_the_module_folder()
    {
        var location = ps.Run("[TorchSharp.torch].Assembly.Location").Output.Single().ToString();
        Assert.Equal(Path.Combine(Paths.Root, "artifacts", "module", "TorchSharp.dll"), location);
    }
}
