using LoraLego.Core.Adapters;

namespace LoraLego.Core.Models;

/// <summary>An adapter attached to a <see cref="BaseModel"/>, with its weight and mode.</summary>
public sealed record AttachedAdapter(LoraAdapter Adapter, double Weight, AttachMode Mode)
{
    public string Name => Adapter.Name;

    public override string ToString() => $"{Name} x{Weight} ({Mode})";
}
