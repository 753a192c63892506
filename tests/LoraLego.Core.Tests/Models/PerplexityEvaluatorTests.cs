using LoraLego.Core.Formats;
using LoraLego.Core.Models;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Models;

public sealed class PerplexityEvaluatorTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("loralego-eval-").FullName;
    private readonly BaseModel _model = BaseModel.Load(GoldenLogits.BaseModelFolder, new BaseModelOptions { Device = Core.Compute.ComputeDevice.Cpu });

    private static readonly long[][] Rows =
    [
        [1, 5, 9, 200, 17, 3, 3, 80],
        [2, 250, 7],
        [42],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11, 12, 13],
        [100, 101],
    ];

    private string WriteJsonl(IEnumerable<string> lines)
    {
        string path = Path.Combine(_folder, "rows.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    private string WriteRows() =>
        WriteJsonl(Rows.Select(r => $"{{\"input_ids\": [{string.Join(", ", r)}]}}").Prepend("").Append("   "));

    // The loss straight from each row's logits, one row at a time, in double precision.
    private (double Loss, long Tokens) LossFromLogits(int? maxLength)
    {
        double sum = 0;
        long tokens = 0;
        foreach (var full in Rows)
        {
            var row = maxLength is int max && full.Length > max ? full[..max] : full;
            if (row.Length < 2)
                continue;
            var logits = _model.Run([row]);
            for (int t = 0; t + 1 < row.Length; t++)
            {
                var scores = Enumerable.Range(0, logits.VocabSize).Select(v => (double)logits[0, t, v]).ToArray();
                double top = scores.Max();
                double logSumExp = top + Math.Log(scores.Sum(s => Math.Exp(s - top)));
                sum += logSumExp - scores[row[t + 1]];
                tokens++;
            }
        }
        return (sum / tokens, tokens);
    }

    [Theory]
    [InlineData(1, null)]
    [InlineData(2, null)]
    [InlineData(8, null)]
    [InlineData(3, 5)]
    public void Loss_equals_the_loss_computed_from_logits(int batchSize, int? maxLength)
    {
        _model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("c")));
        var (expected, expectedTokens) = LossFromLogits(maxLength);
        var result = PerplexityEvaluator.Evaluate(_model, WriteRows(), new EvaluationOptions { BatchSize = batchSize, MaxLength = maxLength });
        Assert.Equal(expectedTokens, result.Tokens);
        Assert.Equal(4, result.Rows);
        Assert.Equal(1, result.SkippedRows);
        Assert.True(Math.Abs(result.Loss - expected) < 1e-5, $"loss {result.Loss} vs {expected}");
        Assert.Equal(Math.Exp(result.Loss), result.Perplexity, 12);
        Assert.True(result.Seconds > 0);
        Assert.Equal(result.Tokens / result.Seconds, result.TokensPerSecond, 9);
    }

    [Fact]
    public void Progress_is_reported_after_each_batch_and_at_the_end()
    {
        var reports = new List<EvaluationProgress>();
        var result = PerplexityEvaluator.Evaluate(_model, WriteRows(), new EvaluationOptions { BatchSize = 2 }, reports.Add);
        Assert.Equal(3, reports.Count);
        Assert.Equal(result.Tokens, reports[^1].Tokens);
        Assert.Equal(4, reports[^1].Rows);
        Assert.Equal(1.0, reports[^1].Fraction);
        Assert.True(reports[0].Fraction < 1.0);
    }

    [Fact]
    public void Cancellation_stops_between_batches()
    {
        using var cancel = new CancellationTokenSource();
        Assert.Throws<OperationCanceledException>(() =>
            PerplexityEvaluator.Evaluate(_model, WriteRows(), new EvaluationOptions { BatchSize = 1 }, _ => cancel.Cancel(), cancel.Token));
    }

    [Theory]
    [InlineData("{\"input_ids\": [1, 2, 256]}", "outside the model's vocabulary")]
    [InlineData("{\"input_ids\": [1, 2.5]}", "not an integer")]
    [InlineData("{\"ids\": [1, 2]}", "a row is {\"input_ids\": [...]}")]
    [InlineData("{\"input_ids\": [1, 2", "not valid JSON")]
    public void A_bad_row_is_reported_with_its_file_and_line(string badLine, string expected)
    {
        string path = WriteJsonl(["{\"input_ids\": [1, 2, 3]}", badLine]);
        var e = Assert.Throws<LoraException>(() => PerplexityEvaluator.Evaluate(_model, path));
        Assert.Equal(LoraErrorKind.InvalidData, e.Kind);
        Assert.Equal(path, e.Target);
        Assert.Contains("line 2", e.Detail);
        Assert.Contains(expected, e.Detail);
    }

    [Fact]
    public void In_memory_rows_give_the_same_loss_as_the_file()
    {
        var fromFile = PerplexityEvaluator.Evaluate(_model, WriteRows());
        var fromRows = PerplexityEvaluator.Evaluate(_model, Rows);
        Assert.Equal(fromFile.Loss, fromRows.Loss, 12);
    }

    [Fact]
    public void Forward_benchmark_counts_the_tokens_it_ran()
    {
        var result = ForwardBenchmark.Measure(_model, batchSize: 2, sequenceLength: 8, iterations: 2, warmupIterations: 0);
        Assert.Equal(32, result.Tokens);
        Assert.True(result.TokensPerSecond > 0);
    }

    public void Dispose()
    {
        _model.Dispose();
        Directory.Delete(_folder, recursive: true);
    }
}
