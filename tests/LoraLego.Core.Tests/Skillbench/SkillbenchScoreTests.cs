using System.Text.Json;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;
using LoraLego.Core.Models;

namespace LoraLego.Core.Tests.Skillbench;

/// <summary>
/// Answer-only scores on skillbench's eval rows against the ones PEFT and transformers wrote
/// (scores.json, rounded to 4 decimals): the labels convention, exact match, and a merge.
/// </summary>
public sealed class SkillbenchScoreTests : IDisposable
{
    private static readonly string[] Skills = ["swap", "complement", "increment", "descend"];
    private static readonly JsonElement Table = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures.Skillbench, "scores.json"))).RootElement.GetProperty("table");
    private readonly BaseModel _model = BaseModel.Load(Path.Combine(Fixtures.Skillbench, "base"), new BaseModelOptions { Device = Core.Compute.ComputeDevice.Cpu });

    private static string Eval(string skill) => Path.Combine(Fixtures.Skillbench, "eval", skill + ".jsonl");

    private static LoraLego.Core.Adapters.LoraAdapter Adapter(string skill) => PeftAdapterReader.Read(Path.Combine(Fixtures.Skillbench, "adapters", skill));

    private void AssertScores(string row, string skill)
    {
        var expected = Table.GetProperty(row).GetProperty(skill);
        var result = PerplexityEvaluator.Evaluate(_model, Eval(skill), new EvaluationOptions { BatchSize = 64 });
        Assert.Equal(512, result.Rows);
        Assert.Equal(512 * 8, result.Tokens);
        Assert.True(Math.Abs(result.Loss - expected[0].GetDouble()) < 6e-4, $"{row} on {skill}: loss {result.Loss} vs PEFT's {expected[0]}");
        Assert.True(Math.Abs(result.ExactMatch - expected[1].GetDouble()) < 1e-3, $"{row} on {skill}: exact match {result.ExactMatch} vs PEFT's {expected[1]}");
    }

    [Fact]
    public void The_base_model_scores_as_in_PEFT_on_every_skill()
    {
        foreach (var skill in Skills)
            AssertScores("base", skill);
    }

    [Theory]
    [InlineData("swap")]
    [InlineData("complement")]
    [InlineData("increment")]
    [InlineData("descend")]
    public void Each_adapter_scores_as_in_PEFT_on_its_own_skill_and_another(string skill)
    {
        _model.Attach(Adapter(skill));
        AssertScores("adapter/" + skill, skill);
        AssertScores("adapter/" + skill, Skills[(Array.IndexOf(Skills, skill) + 1) % Skills.Length]);
    }

    [Fact]
    public void The_cat_merge_with_weights_a_quarter_scores_as_PEFTs_best_merge()
    {
        var merged = StandardMerge.Merge(Skills.Select(s => new MergeInput(Adapter(s), 0.25)).ToList(), MergeMethod.Cat);
        _model.Attach(merged);
        foreach (var skill in Skills)
            AssertScores("merge/cat_avg", skill);
    }

    public void Dispose() => _model.Dispose();
}
