namespace LoraLego.Core.Adapters;

/// <summary>
/// The kernel of a convolution that a LoRA adapts (LoCon): files store its down factor as
/// [rank, in, kh, kw] and its up factor as [out, rank, 1, 1]. LoraLego holds both flattened,
/// A as [rank, in * kh * kw] and B as [out, rank], so B @ A is the convolution's weight update
/// flattened and every merge and unit works on matrices; writers reshape them back.
/// </summary>
public sealed record ConvKernel(long Height, long Width)
{
    public long Size => Height * Width;

    /// <summary>The file shape of the down factor (A) of a module whose flattened A is [rank, inFeatures].</summary>
    public long[] DownShape(long rank, long inFeatures) => [rank, inFeatures / Size, Height, Width];

    /// <summary>The file shape of the up factor (B).</summary>
    public static long[] UpShape(long outFeatures, long rank) => [outFeatures, rank, 1, 1];

    public override string ToString() => $"{Height}x{Width}";
}
