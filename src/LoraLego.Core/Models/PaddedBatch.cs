using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>
/// Rows of token ids right-padded to the longest, with their next-token targets (each row's
/// labels shifted by one, <see cref="TokenRow.Ignored"/> where nothing is scored). A causal model
/// never lets a real token see the padding after it, so only the padded targets need excluding.
/// </summary>
internal sealed class PaddedBatch
{
    private readonly long[] _ids;
    private readonly long[] _targets;
    private readonly bool[] _real;

    public PaddedBatch(IReadOnlyList<TokenRow> rows)
    {
        Rows = rows.Count;
        Width = rows.Max(r => r.Length);
        _ids = new long[Rows * Width];
        _targets = new long[Rows * Width];
        _real = new bool[Rows * Width];
        Array.Fill(_targets, TokenRow.Ignored);
        for (int r = 0; r < Rows; r++)
        {
            var row = rows[r];
            row.Ids.CopyTo(_ids, r * Width);
            for (int t = 0; t < row.Length; t++)
                _targets[r * Width + t] = row.TargetAt(t);
            Array.Fill(_real, true, r * Width, row.Length);
        }
        PredictedTokens = rows.Sum(r => (long)r.ScoredTokens);
        PromptLengths = rows.Select(r => r.PromptLength).ToArray();
        InputTokens = rows.Sum(r => (long)r.Length);
    }

    public int Rows { get; }

    public int Width { get; }

    /// <summary>Targets scored: the positions each row's labels score.</summary>
    public long PredictedTokens { get; }

    /// <summary>Per row, <see cref="TokenRow.PromptLength"/>: 0 for a row without labels, which has no known prompt.</summary>
    public int[] PromptLengths { get; }

    /// <summary>Real (unpadded) input tokens.</summary>
    public long InputTokens { get; }

    /// <summary>[rows, width] int64 ids on the CPU.</summary>
    public Tensor Ids() => tensor(_ids, [Rows, Width]);

    /// <summary>[rows * width] int64 targets on <paramref name="device"/>, <see cref="TokenRow.Ignored"/> where nothing is predicted.</summary>
    public Tensor Targets(Device device) => tensor(_targets, [Rows * Width]).to(device);

    /// <summary>[rows, width] float32 on <paramref name="device"/>: 1 at real tokens, 0 at padding.</summary>
    public Tensor TokenMask(Device device) => tensor(_real, [Rows, Width]).to(ScalarType.Float32, device);

    /// <summary>Cross-entropy of <paramref name="logits"/> [rows, width, vocab] against the targets.</summary>
    public Tensor Loss(Tensor logits, nn.Reduction reduction) =>
        nn.functional.cross_entropy(logits.view(-1, logits.shape[^1]), Targets(logits.device), ignore_index: TokenRow.Ignored, reduction: reduction);

    /// <summary>Rows whose every scored target is the arg-max of <paramref name="logits"/> [rows, width, vocab] (teacher-forced exact match).</summary>
    public int ExactRows(Tensor logits)
    {
        using var scope = NewDisposeScope();
        var targets = Targets(logits.device).view(Rows, Width);
        var wrong = logits.argmax(-1).ne(targets).logical_and(targets.ne(TokenRow.Ignored));
        return (int)(Rows - wrong.any(1).sum().item<long>());
    }
}
