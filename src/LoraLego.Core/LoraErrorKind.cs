namespace LoraLego.Core;

/// <summary>What went wrong with an input, so a host can pick the right error category.</summary>
public enum LoraErrorKind
{
    NotFound,
    InvalidData,
    Unsupported,
    ShapeMismatch,
    InvalidArgument,
    AlreadyExists,
    /// <summary>The input's type is not one the command takes (a string piped where adapters go).</summary>
    InvalidType,
    /// <summary>A file could not be read (an I/O error, not its content).</summary>
    ReadFailed,
    /// <summary>A file or folder could not be written.</summary>
    WriteFailed,
    /// <summary>The file system refused access.</summary>
    PermissionDenied,
    /// <summary>libtorch failed on a computation (not on the shape of an input, which Core checks first).</summary>
    ComputeFailed,
    /// <summary>Not enough memory (host or device) for the operation.</summary>
    OutOfMemory,
}
