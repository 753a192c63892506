namespace LoraLego.Core.Models;

/// <summary>Mean next-token loss and exact match of a model over a set of token rows.</summary>
/// <param name="Loss">Mean cross-entropy per scored token, in nats.</param>
/// <param name="Perplexity">exp(Loss).</param>
/// <param name="ExactMatch">Share of rows whose every scored token is the model's arg-max given the tokens before it (teacher-forced).</param>
/// <param name="Tokens">Tokens scored: each row's labelled positions (every token after the first when a row has no labels), after truncation.</param>
/// <param name="Rows">Rows scored.</param>
/// <param name="SkippedRows">Rows with no token to score (fewer than two tokens, or truncation cut every labelled one).</param>
/// <param name="Seconds">Wall time of the whole evaluation, reading included.</param>
public sealed record EvaluationResult(double Loss, double Perplexity, double ExactMatch, long Tokens, int Rows, int SkippedRows, double Seconds)
{
    public double TokensPerSecond => Seconds > 0 ? Tokens / Seconds : 0;
}
