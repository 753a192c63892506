using System.Management.Automation;
using LoraLego.Core;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;

namespace LoraLego.Commands;

[Cmdlet(VerbsData.Import, "Lora", DefaultParameterSetName = PathSet)]
[OutputType(typeof(LoraAdapter))]
public sealed class ImportLoraCommand : LoraCmdlet
{
    private const string PathSet = "Path";
    private const string LiteralSet = "LiteralPath";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = PathSet)]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    public string[] Path { get; set; } = [];

    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = LiteralSet)]
    [Alias("PSPath", "FullName", "LP")]
    [ValidateNotNullOrEmpty]
    public string[] LiteralPath { get; set; } = [];

    /// <summary>Overrides the adapter's name (by default its folder's name, or a kohya file's name).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    protected override void ProcessRecord()
    {
        bool literal = ParameterSetName == LiteralSet;
        foreach (var input in literal ? LiteralPath : Path)
        {
            Guard(input, () =>
            {
                foreach (var resolved in ResolveFileSystemPaths(input, literal))
                    Guard(resolved, () =>
                    {
                        WriteVerbose($"Reading adapter from {resolved}");
                        var adapter = LoraReader.Read(resolved, Name, WriteWarning);
                        foreach (var warning in adapter.Config.Warnings)
                            WriteWarning($"{System.IO.Path.Combine(adapter.Path!, PeftAdapterReader.ConfigFileName)}: {warning}");
                        WriteVerbose($"{adapter.Name}: {adapter.ModuleCount} modules, r {adapter.Rank}, alpha {adapter.Alpha}{(adapter.UseRsLora ? " (rsLoRA)" : "")}, {adapter.ParameterCount} parameters, {adapter.DType}, {adapter.Format} format");
                        WriteObject(adapter);
                    });
            });
        }
    }
}
