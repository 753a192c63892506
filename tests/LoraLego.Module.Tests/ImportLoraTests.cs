using LoraLego.Module.Tests.Hosting;

namespace LoraLego.Module.Tests;

[Collection(SessionCollection.Name)]
public class ImportLoraTests(PowerShellSession ps)
{
    [Fact]
    public void Wildcards_expand_to_every_adapter_folder()
    {
        var result = ps.Run("Import-Lora ([IO.Path]::Combine($Fixtures, 'peft-tiny-llama', 'adapters', '*'))");
        result.AssertNoErrors();
        Assert.Equal(["a", "b", "c", "d"], result.Output.Select(o => (string)o.Properties["Name"].Value).Order());
        Assert.All(result.Output, o => Assert.Equal("LoraAdapter", o.BaseObject.GetType().Name));
    }

    [Fact]
    public void Pipeline_input_binds_by_property_name_from_file_system_objects()
    {
        var result = ps.Run("""
            [IO.DirectoryInfo]::new([IO.Path]::Combine($Fixtures, 'peft-tiny-llama', 'adapters')).GetDirectories() | Import-Lora
            """);
        result.AssertNoErrors();
        Assert.Equal(4, result.Output.Count);
    }

    [Fact]
    public void Strings_bind_by_value_and_a_safetensors_file_is_accepted()
    {
        var result = ps.Run("""
            $d = [IO.Path]::Combine($Fixtures, 'peft-tiny-llama', 'adapters')
            "$d/a", "$d/d/adapter_model.safetensors" | Import-Lora
            """);
        result.AssertNoErrors();
        Assert.Equal(["a", "d"], result.Output.Select(o => (string)o.Properties["Name"].Value));
        Assert.Equal(16, result.Output[1].Properties["Rank"].Value);
        Assert.Equal(true, result.Output[1].Properties["UseRsLora"].Value);
    }

    [Fact]
    public void Name_overrides_the_folder_name()
    {
        var result = ps.Run("(Import-Lora ([IO.Path]::Combine($Fixtures, 'peft-tiny-llama', 'adapters', 'a')) -Name math).Name");
        Assert.Equal("math", result.Output.Single().ToString());
    }

    [Fact]
    public void Default_view_is_a_table_of_name_rank_alpha_modules_parameters()
    {
        string text = ps.Render("Import-Lora ([IO.Path]::Combine($Fixtures, 'peft-tiny-llama', 'adapters', '*'))");
        Assert.Matches(@"Name\s+Rank\s+Alpha\s+rsLoRA\s+Modules\s+Parameters", text);
        Assert.Matches(@"\ba\s+8\s+16\s+False\s+14\s+16,384\b", text);
        Assert.Matches(@"\bd\s+16\s+32\s+True\s+4\b", text);
    }

    [Fact]
    public void Modules_show_their_shapes_without_loading()
    {
        string text = ps.Render("(Import-Lora ([IO.Path]::Combine($Fixtures, 'peft-tiny-llama', 'adapters', 'a'))).Modules.Where{ $_.Key -like '*layers.0.self_attn.k_proj' }");
        Assert.Matches(@"model\.layers\.0\.self_attn\.k_proj\s+8\s+16\s+2\s+32\s+64\s+F32\[8x64\]\s+F32\[32x8\]", text);
    }

    [Fact]
    public void Verbose_tells_what_was_read()
    {
        var result = ps.Run("Import-Lora ([IO.Path]::Combine($Fixtures, 'peft-tiny-llama', 'adapters', 'c')) -Verbose");
        Assert.Contains(result.Verbose, v => v.Contains("c: 14 modules, r 4, alpha 8"));
    }
}
