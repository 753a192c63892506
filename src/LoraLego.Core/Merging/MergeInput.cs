using LoraLego.Core.Adapters;

namespace LoraLego.Core.Merging;

/// <summary>One adapter taking part in a merge, with the user's weight for it.</summary>
public sealed record MergeInput(LoraAdapter Adapter, double Weight = 1.0);
