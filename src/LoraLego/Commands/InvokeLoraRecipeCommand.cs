using System.Management.Automation;
using LoraLego.Core;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;
using LoraLego.Core.Recipes;

namespace LoraLego.Commands;

[Cmdlet(VerbsLifecycle.Invoke, "LoraRecipe", DefaultParameterSetName = PathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(LoraAdapter))]
public sealed class InvokeLoraRecipeCommand : LoraCmdlet
{
    private const string PathSet = "Path";
    private const string TextSet = "Recipe";

    /// <summary>The recipe file (YAML).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true, ParameterSetName = PathSet)]
    [Alias("FullName", "PSPath")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    /// <summary>The recipe itself, as YAML text.</summary>
    [Parameter(Mandatory = true, ParameterSetName = TextSet)]
    [ValidateNotNullOrEmpty]
    public string Recipe { get; set; } = "";

    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        try
        {
            var (text, label) = ParameterSetName == TextSet ? (Recipe, "<recipe>") : Read();
            var plan = RecipePlan.Create(text, label, p => SessionState.Path.GetUnresolvedProviderPathFromPSPath(p), Force);
            var outputs = plan.Merges.Where(m => m.Document.OutputPath is not null).Select(m => Folder(m.Document.OutputPath!)).ToList();
            string action = $"Run {plan.Merges.Count} merge(s) ({string.Join(", ", plan.Merges.Select(m => m.Document.Name))})" +
                (outputs.Count > 0 ? $", writing {string.Join(", ", outputs)}" : "");
            if (!ShouldProcess(label, action))
                return;
            var results = RecipeRunner.Run(plan, WriteVerbose, p => WriteProgress(new ProgressRecord(1, $"Invoke-LoraRecipe", $"module {p.ModuleIndex + 1} of {p.ModuleCount}: {p.ModuleKey}")
            {
                PercentComplete = p.ModuleCount == 0 ? 100 : p.ModuleIndex * 100 / p.ModuleCount,
            }), Cancellation);
            // A result that a later document merges is a step, not an output.
            var steps = plan.Merges.SelectMany(m => m.Inputs.Where(i => i.Adapter is null).Select(i => i.Entry.Source)).ToHashSet(StringComparer.Ordinal);
            foreach (var result in results)
            {
                if (result.Document.OutputPath is not { } output)
                {
                    if (!steps.Contains(result.Document.Name))
                        WriteObject(result.Adapter);
                    continue;
                }
                string folder = Folder(output);
                WriteVerbose($"Writing {result.Adapter.Name} to {folder}");
                PeftAdapterWriter.Write(result.Adapter, folder, result.Document.DType, Cancellation);
                if (PassThru)
                    WriteObject(PeftAdapterReader.Read(folder, result.Adapter.Name));
            }
        }
        catch (LoraException e)
        {
            WriteLoraError(e, ParameterSetName == TextSet ? null : Path);
        }
        catch (OperationCanceledException) when (Cancellation.IsCancellationRequested)
        {
            // Ctrl+C: PowerShell is stopping the pipeline; an export in progress left no files.
        }
        finally
        {
            WriteProgress(new ProgressRecord(1, "Invoke-LoraRecipe", "done") { RecordType = ProgressRecordType.Completed });
        }
    }

    private (string Text, string Label) Read()
    {
        var file = ResolveFileSystemPaths(Path, literal: false) is [var one] ? one
            : throw new LoraException(LoraErrorKind.InvalidArgument, Path, "names several files; give one recipe per call (or pipe them)");
        if (!File.Exists(file))
            throw new LoraException(LoraErrorKind.NotFound, file, "no such recipe file");
        return (File.ReadAllText(file), file);
    }

    private string Folder(string path) => SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);
}
