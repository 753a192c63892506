using System.Management.Automation;
using LoraLego.Core;
using LoraLego.Core.Adapters;
using LoraLego.Core.Recipes;

namespace LoraLego.Commands;

[Cmdlet(VerbsData.ConvertTo, "LoraRecipe")]
[OutputType(typeof(string))]
public sealed class ConvertToLoraRecipeCommand : LoraCmdlet
{
    /// <summary>A merged adapter (from Merge-Lora, or imported from an export of one).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true)]
    [ValidateNotNull]
    public LoraAdapter Adapter { get; set; } = null!;

    protected override void ProcessRecord() => Guard(Adapter.Name, () => WriteObject(RecipeWriter.Write(Adapter)));
}
