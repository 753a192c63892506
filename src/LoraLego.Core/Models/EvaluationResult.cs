namespace LoraLego.Core.Models;

/// <summary>Mean next-token loss of a model over a set of token rows.</summary>
/// <param name="Loss">Mean cross-entropy per scored token, in nats.</param>
/// <param name="Perplexity">exp(Loss).</param>
/// <param name="Tokens">Tokens scored: each row's tokens after its first, after truncation.</param>
/// <param name="Rows">Rows scored.</param>
/// <param name="SkippedRows">Rows with fewer than two tokens, which predict nothing.</param>
/// <param name="Seconds">Wall time of the whole evaluation, reading included.</param>
public sealed record EvaluationResult(double Loss, double Perplexity, long Tokens, int Rows, int SkippedRows, double Seconds)
{
    public double TokensPerSecond => Seconds > 0 ? Tokens / Seconds : 0;
}
