namespace LoraLego.Core;

/// <summary>
/// A problem with a user's input (a file, a shape, an argument). Always names the file or
/// module it concerns, because users manage dozens of adapters and need to know which one.
/// </summary>
public sealed class LoraException : Exception
{
    public LoraException(LoraErrorKind kind, string? target, string message, Exception? inner = null)
        : base(target is null ? message : $"{target}: {message}", inner)
    {
        Kind = kind;
        Target = target;
        Detail = message;
    }

    public LoraErrorKind Kind { get; }

    /// <summary>The message without the target in front.</summary>
    public string Detail { get; }

    /// <summary>The file, folder or module the problem is about.</summary>
    public string? Target { get; }
}
