using System.Text.Json.Nodes;
using LoraLego.Module.Tests.Hosting;

namespace LoraLego.Module.Tests;

[Collection(SessionCollection.Name)]
public class ExportLoraTests(PowerShellSession ps)
{
    private string NewOut() => Path.Combine(ps.Scratch, Guid.NewGuid().ToString("N"));

    private ScriptResult Export(string adapter, string output, string extra = "") =>
        ps.Run($"Import-Lora ([IO.Path]::Combine($Fixtures, 'peft-tiny-llama', 'adapters', '{adapter}')) | Export-Lora -Path $out {extra}",
            new Dictionary<string, object?> { ["out"] = output });

    [Theory]
    [InlineData("a")]
    [InlineData("d")]
    public void Round_trip_writes_bit_identical_tensors_and_an_equivalent_config(string name)
    {
        string output = NewOut();
        Export(name, output).AssertNoErrors();
        string source = Path.Combine(Paths.PeftTinyLlama, "adapters", name);
        Assert.Equal(SafetensorsBytes.TensorBytes(Path.Combine(source, "adapter_model.safetensors")),
            SafetensorsBytes.TensorBytes(Path.Combine(output, "adapter_model.safetensors")));
        var original = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "adapter_config.json")))!;
        var written = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "adapter_config.json")))!;
        Assert.True(JsonNode.DeepEquals(original, written), written.ToJsonString());
    }

    [Fact]
    public void Refuses_to_overwrite_without_Force_and_replaces_with_it()
    {
        string output = NewOut();
        Export("a", output).AssertNoErrors();
        var refused = Export("c", output);
        var error = Assert.Single(refused.Errors);
        Assert.Equal(System.Management.Automation.ErrorCategory.ResourceExists, error.CategoryInfo.Category);
        Assert.Contains("-Force", error.Exception.Message);
        Assert.Equal(8, (int)JsonNode.Parse(File.ReadAllText(Path.Combine(output, "adapter_config.json")))!["r"]!);
        Export("c", output, "-Force").AssertNoErrors();
        Assert.Equal(4, (int)JsonNode.Parse(File.ReadAllText(Path.Combine(output, "adapter_config.json")))!["r"]!);
        Assert.Equal(2, Directory.GetFiles(output).Length);
    }

    [Fact]
    public void WhatIf_writes_nothing_and_says_what_it_would_do()
    {
        string output = NewOut();
        var result = Export("a", output, "-WhatIf");
        result.AssertNoErrors();
        Assert.False(Directory.Exists(output));
        Assert.Contains("Export LoRA adapter 'a'", result.HostText);
    }

    [Fact]
    public void Confirm_declined_writes_nothing()
    {
        string output = NewOut();
        ps.Host.ChoiceReply = 2;
        try
        {
            var result = Export("a", output, "-Confirm");
            result.AssertNoErrors();
        }
        finally
        {
            ps.Host.ChoiceReply = 0;
        }
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void DType_converts_and_PassThru_returns_the_written_adapter()
    {
        string output = NewOut();
        var result = Export("a", output, "-DType BFloat16 -PassThru");
        result.AssertNoErrors();
        var adapter = result.Output.Single();
        Assert.Equal("BF16", adapter.Properties["DType"].Value.ToString());
        Assert.Equal(output, adapter.Properties["Path"].Value);
        Assert.Equal(14, adapter.Properties["ModuleCount"].Value);
    }

    [Fact]
    public void A_file_in_the_way_is_an_error_and_no_temporary_files_remain()
    {
        string output = NewOut();
        File.WriteAllText(output, "in the way");
        var error = Assert.Single(Export("a", output).Errors);
        Assert.Contains("is a file", error.Exception.Message);
        Assert.Empty(Directory.GetFileSystemEntries(ps.Scratch, ".*tmp"));
    }

    [Fact]
    public void Export_then_import_gives_the_same_deltas_for_every_fixture_adapter()
    {
        var result = ps.Run("""
            $dir = [IO.Path]::Combine($Fixtures, 'peft-tiny-llama', 'adapters')
            foreach ($n in 'a', 'b', 'c', 'd') {
                $orig = Import-Lora "$dir/$n"
                $back = $orig | Export-Lora -Path ([IO.Path]::Combine($Scratch, "rt-$n")) -Force -PassThru
                for ($i = 0; $i -lt $orig.Modules.Count; $i++) {
                    $x = $orig.Modules[$i]; $y = $back.Modules[$i]
                    if ($x.Key -ne $y.Key -or $x.Scaling -ne $y.Scaling) { "mismatch $n $($x.Key)" }
                    $ax = $x.A.ToArray(); $ay = $y.A.ToArray()
                    for ($j = 0; $j -lt $ax.Length; $j++) { if ($ax[$j] -ne $ay[$j]) { "A differs $n $($x.Key)"; break } }
                }
            }
            'done'
            """);
        result.AssertNoErrors();
        Assert.Equal(["done"], result.Output.Select(o => o.ToString()));
    }
}
