using LoraLego.Fuzz;

namespace LoraLego.Core.Tests.Reliability;

/// <summary>
/// The CI run of the fuzzing harness (tests/LoraLego.Fuzz): a fixed number of deterministic
/// mutations of the fixture seeds through each reader; every refusal must be a LoraException
/// without a stack trace, and no input may crash or hang a reader. Long runs: docs/reliability.md.
/// </summary>
public class FuzzTests
{
    // Per target; the four together stay well under a minute on two cores.
    private const int Executions = 1500;

    [Theory]
    [InlineData("safetensors")]
    [InlineData("config")]
    [InlineData("jsonl")]
    [InlineData("manifest")]
    public void ReaderRefusesEveryMutationWithItsOwnError(string name)
    {
        var target = FuzzTarget.All(Fixtures.Root).Single(t => t.Name == name);
        try
        {
            var report = FuzzRunner.Run(target, Executions, seed: 20260501, hangLimit: TimeSpan.FromSeconds(5));
            Assert.Equal(Executions, report.Executions);
            Assert.True(report.Crashes.Count == 0, $"{report}\n{string.Join("\n", report.Crashes.Take(3).Select(c => c.Message))}");
            Assert.Empty(report.Hangs);
            Assert.True(report.Rejected > Executions / 4, report.ToString());
            Assert.True(report.Accepted > 0, report.ToString());
        }
        finally
        {
            (target as IDisposable)?.Dispose();
        }
    }

    [Fact]
    public void MutationsAreTheSameForTheSameSeed()
    {
        byte[] seed = "{\"r\": 8, \"lora_alpha\": 16}"u8.ToArray();
        var x = new Mutator(7);
        var y = new Mutator(7);
        for (int i = 0; i < 50; i++)
            Assert.Equal(x.Mutate(seed, seed, seed.Length), y.Mutate(seed, seed, seed.Length));
    }
}
