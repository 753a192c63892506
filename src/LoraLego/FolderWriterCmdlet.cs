using System.Management.Automation;

namespace LoraLego;

/// <summary>
/// A cmdlet that writes one folder (an adapter, a mixture, a model): -Path is its first positional
/// parameter, as writers' are, -Force replaces what is there and -PassThru emits what was written.
/// </summary>
public abstract class FolderWriterCmdlet : LoraCmdlet
{
    /// <summary>The folder to write (created if missing).</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }
}
