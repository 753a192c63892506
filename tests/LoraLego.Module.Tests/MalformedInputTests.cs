using System.Management.Automation;
using LoraLego.Module.Tests.Hosting;

namespace LoraLego.Module.Tests;

[Collection(SessionCollection.Name)]
public class MalformedInputTests(PowerShellSession ps)
{
    [Theory]
    [InlineData("does-not-exist", ErrorCategory.ObjectNotFound, "no such file or folder")]
    [InlineData("empty-folder", ErrorCategory.ObjectNotFound, "no adapter files")]
    [InlineData("truncated", ErrorCategory.InvalidData, "truncated")]
    [InlineData("header-too-long", ErrorCategory.InvalidData, "larger than the file")]
    [InlineData("header-not-json", ErrorCategory.InvalidData, "not valid JSON")]
    [InlineData("offsets-out-of-range", ErrorCategory.InvalidData, "outside the")]
    [InlineData("offsets-overlap", ErrorCategory.InvalidData, "overlap")]
    [InlineData("shape-dtype-mismatch", ErrorCategory.InvalidData, "needs 40 bytes")]
    [InlineData("unsupported-dtype", ErrorCategory.NotImplemented, "unsupported dtype 'C64'")]
    [InlineData("integer-factor", ErrorCategory.NotImplemented, "must be floating point")]
    [InlineData("missing-partner", ErrorCategory.InvalidData, "has lora_A but no lora_B")]
    [InlineData("rank-disagree", ErrorCategory.InvalidData, "disagree on the rank")]
    [InlineData("config-rank-mismatch", ErrorCategory.InvalidData, "config gives rank 4 but the tensors have rank 2")]
    [InlineData("config-not-json", ErrorCategory.InvalidData, "adapter_config.json is not valid JSON")]
    [InlineData("no-config", ErrorCategory.ObjectNotFound, "adapter_config.json not found")]
    [InlineData("pickle", ErrorCategory.NotImplemented, "pickle (.bin) adapters are not read")]
    [InlineData("dora", ErrorCategory.NotImplemented, "DoRA")]
    [InlineData("dora-tensor-only", ErrorCategory.NotImplemented, "DoRA")]
    [InlineData("not-lora", ErrorCategory.NotImplemented, "peft_type 'IA3'")]
    public void Bad_input_gets_a_categorised_error_naming_the_file(string folder, ErrorCategory category, string message)
    {
        string path = Path.Combine(Paths.Fixtures, "malformed", folder);
        var result = ps.Run("Import-Lora -LiteralPath $p", new Dictionary<string, object?> { ["p"] = path });
        Assert.Empty(result.Output);
        var error = Assert.Single(result.Errors);
        Assert.Equal(category, error.CategoryInfo.Category);
        Assert.StartsWith("LoraLego.", error.FullyQualifiedErrorId);
        Assert.Contains(message, error.Exception.Message);
        Assert.Contains(path, error.Exception.Message);
    }

    [Fact]
    public void Pickle_file_is_refused_without_being_read()
    {
        string bin = Path.Combine(Paths.Fixtures, "malformed", "pickle", "adapter_model.bin");
        var result = ps.Run("Import-Lora -LiteralPath $p", new Dictionary<string, object?> { ["p"] = bin });
        Assert.Contains("unpickling can run arbitrary code", Assert.Single(result.Errors).Exception.Message);
    }

    [Fact]
    public void One_bad_adapter_does_not_stop_the_others_and_the_session_keeps_working()
    {
        var result = ps.Run("""
            $m = [IO.Path]::Combine($Fixtures, 'malformed')
            Import-Lora -LiteralPath "$m/truncated", "$m/valid", "$m/offsets-overlap"
            """);
        Assert.Equal(2, result.Errors.Count);
        Assert.Equal("valid", Assert.Single(result.Output).Properties["Name"].Value);
        var again = ps.Run("(Import-Lora -LiteralPath ([IO.Path]::Combine($Fixtures, 'malformed/valid'))).Rank");
        again.AssertNoErrors();
        Assert.Equal(2, again.Output.Single().BaseObject);
    }

    [Fact]
    public void ErrorAction_Stop_makes_the_error_terminating()
    {
        var result = ps.Run("try { Import-Lora -LiteralPath ([IO.Path]::Combine($Fixtures, 'malformed/truncated')) -ErrorAction Stop; 'not reached' } catch { $_.CategoryInfo.Category.ToString() }");
        Assert.Equal("InvalidData", Assert.Single(result.Output).ToString());
    }
}
