using LoraLego.Core;

namespace LoraLego.Fuzz;

/// <summary>
/// The SharpFuzz entry point: a refusal (a LoraException without a stack trace) is a normal end,
/// anything else escapes and is the crash libFuzzer or AFL records.
/// </summary>
public static class SharpFuzzEntry
{
    public static void Run(FuzzTarget target, byte[] input, string workFolder)
    {
        try
        {
            target.Run(input, workFolder);
        }
        catch (LoraException e) when (!FuzzRunner.HasStackTrace(e.Message))
        {
        }
    }
}
