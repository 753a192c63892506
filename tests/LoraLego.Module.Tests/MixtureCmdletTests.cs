using LoraLego.Module.Tests.Hosting;

namespace LoraLego.Module.Tests;

[Collection(SessionCollection.Name)]
public class MixtureCmdletTests(PowerShellSession ps)
{
    private const string Setup = """
        $model = Import-BaseModel "$Fixtures/peft-tiny-llama/base" -Device Cpu
        $data = [IO.Path]::Combine($RepoRoot, 'examples', 'data', 'tiny-llama-domain-a.jsonl')
        $mix = Import-Lora "$Fixtures/peft-tiny-llama/adapters/a", "$Fixtures/peft-tiny-llama/adapters/b" | New-LoraMixture -Name ab
        """;

    [Fact]
    public void Optimize_trains_reports_epochs_and_returns_the_mixture_with_its_history()
    {
        var result = ps.Run(Setup + "\nOptimize-LoraMixture $mix -Model $model -Data $data -Epochs 2 -BatchSize 8 -LearningRate 0.05 -Verbose");
        result.AssertNoErrors();
        var mixture = result.Output.Single();
        Assert.Equal("ab", mixture.Properties["Name"].Value);
        var history = (IReadOnlyList<double>)mixture.Properties["LossHistory"].Value;
        Assert.Equal(6, history.Count);
        Assert.Equal(2, result.Verbose.Count(v => v.StartsWith("epoch ", StringComparison.Ordinal)));
    }

    [Fact]
    public void Gates_are_reported_per_layer_stored_and_measured()
    {
        var stored = ps.Run(Setup + "\nGet-LoraMixtureGate $mix; Get-LoraMixtureGate ($mix.Experts | New-LoraMixture -Granularity Layer)");
        stored.AssertNoErrors();
        Assert.Equal(["model", "model.layers.0", "model.layers.1"], stored.Output.Select(o => o.Properties["Gate"].Value.ToString()));
        var measured = ps.Run(Setup + "\n$mix | Get-LoraMixtureGate -Model $model -Data $data");
        measured.AssertNoErrors();
        Assert.All(measured.Output, o => Assert.True((long)o.Properties["Tokens"].Value > 0));
        string text = ps.Render(Setup + "\nGet-LoraMixtureGate $mix");
        Assert.True(text.Contains("a 0.500  b 0.500"), text);
    }

    [Fact]
    public void Data_takes_wildcards_and_the_measurement_reports_each_files_routing()
    {
        var result = ps.Run(Setup + """

            $files = [IO.Path]::Combine($RepoRoot, 'examples', 'data', 'tiny-llama-domain-*.jsonl')
            $null = Optimize-LoraMixture $mix -Model $model -Data $files -Epochs 1
            $mix.Training.Rows
            Get-LoraMixtureGate $mix -Model $model -Data $files
            """);
        result.AssertNoErrors();
        var measured = result.Output.Skip(1).ToList();
        Assert.Equal(["tiny-llama-domain-a.jsonl", "tiny-llama-domain-b.jsonl"], measured.Select(m => Path.GetFileName((string)m.Properties["Data"].Value)));
        Assert.All(measured, m => Assert.Equal(1.0, ((IReadOnlyList<double>)m.Properties["Routed"].Value).Sum(), 9));
        int rowsMeasured = measured.Sum(m => (int)m.Properties["Rows"].Value);
        Assert.Equal(rowsMeasured, (int)result.Output[0].BaseObject);
    }

    [Fact]
    public void Set_disables_and_enables_experts_and_reports_unknown_names()
    {
        var result = ps.Run(Setup + "\n(Set-LoraMixture $mix -Disable b -PassThru).EnabledExperts; (Set-LoraMixture $mix -Enable b -PassThru).EnabledExperts.Count");
        result.AssertNoErrors();
        Assert.Equal(["a", "2"], result.Output.Select(o => o.ToString()));
        var unknown = ps.Run(Setup + "\nSet-LoraMixture $mix -Disable zzz");
        Assert.Equal("LoraLego.NotFound,LoraLego.Commands.SetLoraMixtureCommand", unknown.Errors.Single().FullyQualifiedErrorId);
        var whatIf = ps.Run(Setup + "\nSet-LoraMixture $mix -Disable b -WhatIf; $mix.DisabledExperts.Count");
        Assert.Equal("0", whatIf.Output.Single().ToString());
    }

    [Fact]
    public void Export_and_import_round_trip_and_refuse_to_overwrite_without_force()
    {
        string folder = Path.Combine(ps.Scratch, "mixture-ab");
        var vars = new Dictionary<string, object?> { ["folder"] = folder };
        var result = ps.Run(Setup + """

            $null = Optimize-LoraMixture $mix -Model $model -Data $data -BatchSize 8 -LearningRate 0.05
            Set-LoraMixture $mix -Disable a
            Export-LoraMixture $mix $folder
            $back = Import-LoraMixture $folder
            $before = (Get-LoraMixtureGate $mix -Model $model -Data $data).ForEach{ $_.ToString() } -join '|'
            $after = (Get-LoraMixtureGate $back -Model $model -Data $data).ForEach{ $_.ToString() } -join '|'
            $before -eq $after
            $back.DisabledExperts
            """, vars);
        result.AssertNoErrors();
        Assert.Equal(["True", "a"], result.Output.Select(o => o.ToString()));
        Assert.True(File.Exists(Path.Combine(folder, "experts", "b", "adapter_model.safetensors")));
        var again = ps.Run(Setup + "\nExport-LoraMixture $mix $folder", vars);
        Assert.Equal("LoraLego.AlreadyExists,LoraLego.Commands.ExportLoraMixtureCommand", again.Errors.Single().FullyQualifiedErrorId);
        var whatIf = ps.Run(Setup + "\nExport-LoraMixture $mix ([IO.Path]::Combine($Scratch, 'never')) -WhatIf; [IO.Directory]::Exists([IO.Path]::Combine($Scratch, 'never'))");
        Assert.Equal("False", whatIf.Output.Single().ToString());
    }

    [Fact]
    public void A_likelihood_mixture_trains_measures_and_round_trips_through_the_cmdlets()
    {
        string folder = Path.Combine(ps.Scratch, "mixture-likelihood");
        var result = ps.Run(Setup + """

            $lik = Import-Lora "$Fixtures/peft-tiny-llama/adapters/a", "$Fixtures/peft-tiny-llama/adapters/b" | New-LoraMixture -Name lik -GateInput Likelihood
            $lik = Optimize-LoraMixture $lik -Model $model -Data $data -BatchSize 8 -LearningRate 0.05
            $before = (Measure-LoraModel -Model $model -Mixture $lik -Data $data).Loss
            Export-LoraMixture $lik $folder
            $back = Import-LoraMixture $folder
            $back.GateInput
            $before -eq (Measure-LoraModel -Model $model -Mixture $back -Data $data).Loss
            $before -ne (Measure-LoraModel -Model $model -Mixture $mix -Data $data).Loss
            """, new Dictionary<string, object?> { ["folder"] = folder });
        result.AssertNoErrors();
        Assert.Equal(["Likelihood", "True", "True"], result.Output.Select(o => o.ToString()));
    }

    [Fact]
    public void A_mixture_renders_as_a_table()
    {
        string text = ps.Render(Setup + "\n$mix");
        Assert.Contains("ab", text);
        Assert.Contains("a, b", text);
        Assert.Contains("Model", text);
        Assert.Contains("Prompt", text);
    }

    [Fact]
    public void The_mole_example_runs()
    {
        string output = Path.Combine(ps.Scratch, "example-mole");
        var result = ps.Run("& ([IO.Path]::Combine($RepoRoot, 'examples', 'mole.ps1')) -OutDir $o", new Dictionary<string, object?> { ["o"] = output });
        result.AssertNoErrors();
        Assert.Contains(result.Output, o => o.ToString() == "round trip keeps the mask and the history: True");
        Assert.Contains(result.Output, o => o.ToString() == "enabled: a");
        Assert.True(File.Exists(Path.Combine(output, "mole-ab", "mixture.json")));
        Assert.Contains(result.Output, o => System.Text.RegularExpressions.Regex.IsMatch(o.ToString(), @"^tiny-llama-domain-b: loss 5\.\d{4} with likelihood gates$"));
    }
}
