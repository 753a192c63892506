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
        LoraErrorKind.InvalidType => ErrorCategory.InvalidType,
        LoraErrorKind.ReadFailed => ErrorCategory.ReadError,
        LoraErrorKind.WriteFailed => ErrorCategory.WriteError,
        LoraErrorKind.PermissionDenied => ErrorCategory.PermissionDenied,
        LoraErrorKind.ComputeFailed => ErrorCategory.InvalidResult,
        LoraErrorKind.OutOfMemory => ErrorCategory.ResourceUnavailable,
        _ => ErrorCategory.NotSpecified,
    };

    /// <summary>
    /// The one shape of every error of the module: the exception (its message names the file,
    /// adapter, module or parameter), the id LoraLego.&lt;ErrorId&gt;, the category of its kind, and
    /// its target object.
    /// </summary>
    protected static ErrorRecord ToErrorRecord(LoraException e, object? target) =>
        new(e, "LoraLego." + e.ErrorId, CategoryOf(e.Kind), target ?? e.Target);

    protected void WriteLoraError(LoraException e, object? target = null) => WriteError(ToErrorRecord(e, target));

    protected void ThrowLoraError(LoraException e, object? target = null) => ThrowTerminatingError(ToErrorRecord(e, target));

    /// <summary>
    /// Whether <paramref name="e"/> is a failure the module reports as its own error (a
    /// LoraException, or an I/O or libtorch failure rewrapped by <see cref="LoraException.From"/>):
    /// for catch filters, <c>catch (Exception e) when (IsLoraError(e, target, out var error))</c>.
    /// </summary>
    protected static bool IsLoraError(Exception e, object? target, out LoraException error)
    {
        error = LoraException.From(e, target?.ToString())!;
        return error is not null;
    }

    /// <summary>Runs <paramref name="action"/>, turning a LoraException (or an I/O or native failure) into a non-terminating error.</summary>
    protected void Guard(object? target, Action action)
    {
        try
        {
            action();
        }
        catch (Exception e) when (IsLoraError(e, target, out var error))
        {
            WriteLoraError(error, target);
        }
    }

    /// <summary>
    /// The error for pipeline input of a type the cmdlet does not take, saying what it takes,
    /// instead of PowerShell's generic "cannot be bound to any parameters".
    /// </summary>
    protected void WriteWrongInput(object? input, string takes)
    {
        // The catch-all parameter is a string (so that it never competes with the typed ones for
        // the objects they take): other objects arrive as their text.
        object? value = input is PSObject ps ? ps.BaseObject : input;
        string what = value switch
        {
            null => "$null",
            string s => $"'{(s.Length > 80 ? s[..80] + "..." : s)}' (a string, or an object of another type shown as text)",
            _ => $"{("AEIOU".Contains(value.GetType().Name[0]) ? "an" : "a")} {value.GetType().Name}",
        };
        const string hint = "; adapters are read from folders with Import-Lora, mixtures are written with Export-LoraMixture, and adapters are attached to a base model with Mount-Lora";
        WriteLoraError(new LoraException(LoraErrorKind.InvalidType, MyInvocation.MyCommand.Name,
            $"takes {takes}, not {what}{hint}", errorId: "WrongInputType"), value);
    }

    /// <summary>
    /// The file-system path of an output the user named (relative to the PowerShell location,
    /// TestDrive: and the like included); a path of another provider (Env:, Variable:) is written
    /// as an error (InvalidArgument, id NotAFileSystemPath, naming the path as given) and gives null.
    /// </summary>
    protected string? ResolveOutputPath(string path)
    {
        try
        {
            return FileSystemPath(path);
        }
        catch (LoraException e)
        {
            WriteLoraError(e);
            return null;
        }
    }

    private string FileSystemPath(string path)
    {
        try
        {
            string resolved = SessionState.Path.GetUnresolvedProviderPathFromPSPath(path, out var provider, out _);
            if (provider.Name == "FileSystem")
                return resolved;
            throw new LoraException(LoraErrorKind.InvalidArgument, path, $"is a {provider.Name} path; give a folder in the file system", errorId: "NotAFileSystemPath");
        }
        catch (Exception e) when (e is ProviderNotFoundException or System.Management.Automation.DriveNotFoundException or NotSupportedException or PSArgumentException or ProviderInvocationException)
        {
            throw new LoraException(LoraErrorKind.InvalidArgument, path, $"is not a file-system path ({e.Message})", e, "NotAFileSystemPath");
        }
    }

    /// <summary>The files of a -Data parameter: each path resolved with its wildcards, in the order given.</summary>
    protected IReadOnlyList<string> ResolveDataFiles(IEnumerable<string> paths) =>
        paths.SelectMany(path => ResolveFileSystemPaths(path, literal: false)).ToList();

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
