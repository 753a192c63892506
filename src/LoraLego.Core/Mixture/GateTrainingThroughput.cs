namespace LoraLego.Core.Mixture;

/// <summary>How fast gate training ran: timed steps only, warm-up excluded.</summary>
public sealed record GateTrainingThroughput(int BatchSize, int SequenceLength, int Steps, double Seconds)
{
    /// <summary>Input tokens trained on in the timed steps.</summary>
    public long Tokens => (long)BatchSize * SequenceLength * Steps;

    public double StepsPerSecond => Seconds > 0 ? Steps / Seconds : 0;

    public double TokensPerSecond => Seconds > 0 ? Tokens / Seconds : 0;

    public override string ToString() => $"{StepsPerSecond:F2} steps/s, {TokensPerSecond:F1} tokens/s ({BatchSize}x{SequenceLength}, {Steps} steps)";
}
