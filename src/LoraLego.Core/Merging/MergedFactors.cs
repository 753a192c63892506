using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>A merged module's factors: its update is exactly B @ A (scaling 1).</summary>
internal readonly record struct MergedFactors(Tensor A, Tensor B);
