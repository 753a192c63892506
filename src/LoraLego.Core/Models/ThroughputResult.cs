namespace LoraLego.Core.Models;

/// <summary>How fast forward passes ran: timed iterations only, warm-up excluded.</summary>
public sealed record ThroughputResult(int BatchSize, int SequenceLength, int Iterations, double Seconds)
{
    /// <summary>Input tokens processed in the timed iterations.</summary>
    public long Tokens => (long)BatchSize * SequenceLength * Iterations;

    public double TokensPerSecond => Seconds > 0 ? Tokens / Seconds : 0;

    public override string ToString() => $"{TokensPerSecond:F1} tokens/s ({BatchSize}x{SequenceLength}, {Iterations} iterations)";
}
