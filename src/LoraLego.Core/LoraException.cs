using System.Runtime.InteropServices;

namespace LoraLego.Core;

/// <summary>
/// A problem with a user's input (a file, a shape, an argument). Always names the file or
/// module it concerns, because users manage dozens of adapters and need to know which one.
/// </summary>
/// <remarks>
/// The one error type of the module: readers, merges and writers throw it, and
/// <see cref="From"/> turns what .NET and libtorch throw at Core's boundary (I/O errors, native
/// failures) into it, without their stack traces, so a host shows every failure the same way.
/// </remarks>
public sealed class LoraException : Exception
{
    private readonly string? _errorId;

    public LoraException(LoraErrorKind kind, string? target, string message, Exception? inner = null, string? errorId = null)
        : base(target is null ? message : $"{target}: {message}", inner)
    {
        Kind = kind;
        Target = target;
        Detail = message;
        _errorId = errorId;
    }

    public LoraErrorKind Kind { get; }

    /// <summary>
    /// A stable name for this kind of failure (e.g. NonFiniteWeights, ConfigFieldType), which a
    /// host makes its error id from; the kind's name where no finer one is given.
    /// </summary>
    public string ErrorId => _errorId ?? Kind.ToString();

    /// <summary>The message without the target in front.</summary>
    public string Detail { get; }

    /// <summary>The file, folder or module the problem is about.</summary>
    public string? Target { get; }

    /// <summary>The same error about another target (a file instead of a module, the user's path instead of a temporary one).</summary>
    public LoraException Retarget(string? target, string? detail = null) =>
        new(Kind, target, detail ?? Detail, this, _errorId);

    /// <summary>
    /// <paramref name="e"/> as a LoraException: itself if it is one; an I/O, access or native
    /// (libtorch) failure rewrapped with a message that names <paramref name="target"/> and has no
    /// native stack trace; null for anything else (cancellation, a bug), which must stay visible as it is.
    /// </summary>
    public static LoraException? From(Exception e, string? target) => e switch
    {
        LoraException l => l,
        UnauthorizedAccessException => new(LoraErrorKind.PermissionDenied, target, "permission denied: " + WithoutPaths(e.Message), e, "PermissionDenied"),
        PathTooLongException => new(LoraErrorKind.InvalidArgument, target, "the path or one of its names is too long for the file system", e, "PathTooLong"),
        FileNotFoundException or DirectoryNotFoundException => new(LoraErrorKind.NotFound, target, WithoutPaths(e.Message), e),
        IOException => new(LoraErrorKind.ReadFailed, target, WithoutPaths(e.Message), e, "IOError"),
        OutOfMemoryException => new(LoraErrorKind.OutOfMemory, target, "out of memory", e, "OutOfMemory"),
        ExternalException when IsOutOfMemory(e.Message) => new(LoraErrorKind.OutOfMemory, target, $"out of memory in libtorch ({NativeMessage(e.Message)})", e, "OutOfMemory"),
        ExternalException => new(LoraErrorKind.ComputeFailed, target, $"libtorch failed: {NativeMessage(e.Message)}", e, "NativeError"),
        _ => null,
    };

    /// <summary>The first meaningful line of a libtorch error, without the C++ stack trace it carries.</summary>
    public static string NativeMessage(string message)
    {
        foreach (var raw in message.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith("Exception raised from", StringComparison.Ordinal) || line.StartsWith("frame #", StringComparison.Ordinal))
                continue;
            return line.Length > 300 ? line[..300] + "..." : line;
        }
        return "an error with no message";
    }

    private static bool IsOutOfMemory(string message) =>
        message.Contains("out of memory", StringComparison.OrdinalIgnoreCase) || message.Contains("can't allocate memory", StringComparison.OrdinalIgnoreCase);

    // .NET's I/O messages quote the path they failed on, which may be a temporary name the user never gave; the target names the user's path.
    internal static string WithoutPaths(string message)
    {
        var text = System.Text.RegularExpressions.Regex.Replace(message, @"\s*:?\s*'[^']*'", "");
        return text.Trim().TrimEnd('.', ' ', ':');
    }
}
