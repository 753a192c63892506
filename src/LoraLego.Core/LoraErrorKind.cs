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
}
