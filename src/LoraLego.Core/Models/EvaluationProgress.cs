namespace LoraLego.Core.Models;

/// <summary>Where an evaluation stands, reported after each batch and once at the end.</summary>
/// <param name="Rows">Rows scored so far.</param>
/// <param name="Tokens">Tokens scored so far (every token after the first of its row).</param>
/// <param name="Fraction">Share of the input consumed, 0..1, or null when the input's size is unknown.</param>
/// <param name="Elapsed">Time since the evaluation started.</param>
public sealed record EvaluationProgress(int Rows, long Tokens, double? Fraction, TimeSpan Elapsed);
