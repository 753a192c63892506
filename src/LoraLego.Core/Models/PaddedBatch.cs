using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>
/// Rows of token ids right-padded to the longest, with their next-token targets. A causal model
/// never lets a real token see the padding after it, so only the padded targets need excluding.
/// </summary>
internal sealed class PaddedBatch
{
    /// <summary>cross_entropy skips targets equal to this (its default ignore_index).</summary>
    public const long IgnoredTarget = -100;

    private readonly long[] _ids;
    private readonly long[] _targets;
    private readonly bool[] _real;

    public PaddedBatch(IReadOnlyList<long[]> rows)
    {
        Rows = rows.Count;
        Width = rows.Max(r => r.Length);
        _ids = new long[Rows * Width];
        _targets = new long[Rows * Width];
        _real = new bool[Rows * Width];
        Array.Fill(_targets, IgnoredTarget);
        for (int r = 0; r < Rows; r++)
        {
            var row = rows[r];
            row.CopyTo(_ids, r * Width);
            Array.Copy(row, 1, _targets, r * Width, row.Length - 1);
            Array.Fill(_real, true, r * Width, row.Length);
        }
        PredictedTokens = rows.Sum(r => r.Length - 1L);
        InputTokens = rows.Sum(r => (long)r.Length);
    }

    public int Rows { get; }

    public int Width { get; }

    /// <summary>Targets scored: every token after the first of each row.</summary>
    public long PredictedTokens { get; }

    /// <summary>Real (unpadded) input tokens.</summary>
    public long InputTokens { get; }

    /// <summary>[rows, width] int64 ids on the CPU.</summary>
    public Tensor Ids() => tensor(_ids, [Rows, Width]);

    /// <summary>[rows * width] int64 targets on <paramref name="device"/>, <see cref="IgnoredTarget"/> where nothing is predicted.</summary>
    public Tensor Targets(Device device) => tensor(_targets, [Rows * Width]).to(device);

    /// <summary>[rows, width] float32 on <paramref name="device"/>: 1 at real tokens, 0 at padding.</summary>
    public Tensor TokenMask(Device device) => tensor(_real, [Rows, Width]).to(ScalarType.Float32, device);

    /// <summary>Cross-entropy of <paramref name="logits"/> [rows, width, vocab] against the targets.</summary>
    public Tensor Loss(Tensor logits, nn.Reduction reduction) =>
        nn.functional.cross_entropy(logits.view(-1, logits.shape[^1]), Targets(logits.device), ignore_index: IgnoredTarget, reduction: reduction);
}
