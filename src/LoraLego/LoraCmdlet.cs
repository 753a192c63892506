using System.Management.Automation;
using LoraLego.Core;

namespace LoraLego;

/// <summary>
/// Shared plumbing of LoraLego's cmdlets: Core's LoraException becomes a categorised
/// ErrorRecord naming the file, so one bad adapter among fifty is reported and the rest go on.
/// </summary>
public abstract class LoraCmdlet : PSCmdlet
{
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>Cancelled by Ctrl+C (StopProcessing); Core's long operations check it between steps.</summary>
    protected CancellationToken Cancellation => _stopping.Token;

    protected override void StopProcessing() => _stopping.Cancel();

    protected static ErrorCategory CategoryOf(LoraErrorKind kind) => kind switch
    {
        LoraErrorKind.NotFound => ErrorCategory.ObjectNotFound,
        LoraErrorKind.InvalidData => ErrorCategory.InvalidData,
        LoraErrorKind.Unsupported => ErrorCategory.NotImplemented,
        LoraErrorKind.ShapeMismatch => ErrorCategory.InvalidData,
        LoraErrorKind.InvalidArgument => ErrorCategory.InvalidArgument,
        LoraErrorKind.AlreadyExists => ErrorCategory.ResourceExists,
        _ => ErrorCategory.NotSpecified,
    };

    protected static ErrorRecord ToErrorRecord(LoraException e, object? target) =>
        new(e, "LoraLego." + e.Kind, CategoryOf(e.Kind), target ?? e.Target);

    protected void WriteLoraError(LoraException e, object? target = null) => WriteError(ToErrorRecord(e, target));

    protected void ThrowLoraError(LoraException e, object? target = null) => ThrowTerminatingError(ToErrorRecord(e, target));

    /// <summary>Runs <paramref name="action"/>, turning a LoraException into a non-terminating error.</summary>
    protected void Guard(object? target, Action action)
    {
        try
        {
            action();
        }
        catch (LoraException e)
        {
            WriteLoraError(e, target);
        }
    }

    /// <summary>Resolves a PowerShell path (wildcards when <paramref name="literal"/> is false) to file-system paths.</summary>
    protected IReadOnlyList<string> ResolveFileSystemPaths(string path, bool literal)
    {
        if (literal)
            return [SessionState.Path.GetUnresolvedProviderPathFromPSPath(path)];
        try
        {
            var resolved = SessionState.Path.GetResolvedProviderPathFromPSPath(path, out var provider);
            if (provider.Name != "FileSystem")
                throw new LoraException(LoraErrorKind.InvalidArgument, path, $"is a {provider.Name} path; adapters live in the file system");
            return resolved;
        }
        catch (ItemNotFoundException)
        {
            throw new LoraException(LoraErrorKind.NotFound, path, "no such file or folder");
        }
    }
}
