using LoraLego.Core.Formats;
using LoraLego.Core.Models;

namespace LoraLego.Core.Tests.Models;

/// <summary>Rows with Hugging Face labels: only labelled positions are scored, and exact match is per row.</summary>
public sealed class LabelledRowTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("loralego-labels-").FullName;
    private readonly BaseModel _model = BaseModel.Load(GoldenLogits.BaseModelFolder, new BaseModelOptions { Device = Core.Compute.ComputeDevice.Cpu });

    private static readonly TokenRow[] Rows =
    [
        new([1, 5, 9, 200, 17, 3, 3, 80], [-100, -100, -100, -100, 17, 3, -100, 80]),
        new([2, 250, 7], [-100, -100, 7]),
        new([9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11, 12, 13]),
    ];

    public LabelledRowTests() => _model.Attach(PeftAdapterReader.Read(Fixtures.Adapter("c")));

    private string WriteJsonl(IEnumerable<string> lines)
    {
        string path = Path.Combine(_folder, "rows.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    private static string Json(TokenRow row) => row.HasLabels
        ? $"{{\"input_ids\": [{string.Join(", ", row.Ids)}], \"labels\": [{string.Join(", ", row.Labels)}]}}"
        : $"{{\"input_ids\": [{string.Join(", ", row.Ids)}]}}";

    // By hand from each row's logits, in double precision: position t's label scored against the logits at t - 1.
    private (double Loss, long Tokens, double ExactMatch) ByHand(IEnumerable<TokenRow> rows)
    {
        double sum = 0;
        long tokens = 0;
        int rowCount = 0, exact = 0;
        foreach (var row in rows)
        {
            var logits = _model.Run([row.Ids]);
            bool allRight = true;
            for (int t = 1; t < row.Length; t++)
            {
                if (row.Labels[t] == -100)
                    continue;
                var scores = Enumerable.Range(0, logits.VocabSize).Select(v => (double)logits[0, t - 1, v]).ToArray();
                double top = scores.Max();
                sum += top + Math.Log(scores.Sum(s => Math.Exp(s - top))) - scores[row.Labels[t]];
                allRight &= Array.IndexOf(scores, top) == row.Labels[t];
                tokens++;
            }
            rowCount++;
            exact += allRight ? 1 : 0;
        }
        return (sum / tokens, tokens, (double)exact / rowCount);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Labelled_rows_score_only_their_labelled_positions(int batchSize)
    {
        var (loss, tokens, exactMatch) = ByHand(Rows);
        var result = PerplexityEvaluator.Evaluate(_model, WriteJsonl(Rows.Select(Json)), new EvaluationOptions { BatchSize = batchSize });
        Assert.Equal(3 + 1 + 12, tokens);
        Assert.Equal(tokens, result.Tokens);
        Assert.Equal(3, result.Rows);
        Assert.True(Math.Abs(result.Loss - loss) < 1e-5, $"loss {result.Loss} vs {loss}");
        Assert.Equal(exactMatch, result.ExactMatch);
    }

    [Fact]
    public void Exact_match_counts_rows_whose_every_scored_token_is_the_arg_max()
    {
        // Labels taken from the model's own predictions are exact by construction; one changed label spoils its row only.
        long[] ids = [3, 14, 15, 92, 65, 35, 89, 79];
        var logits = _model.Run([ids]);
        var predicted = Enumerable.Range(0, ids.Length - 1)
            .Select(t => (long)Enumerable.Range(0, logits.VocabSize).MaxBy(v => logits[0, t, v])).ToArray();
        var right = new long[ids.Length];
        right[0] = -100;
        predicted.CopyTo(right, 1);
        var wrong = (long[])right.Clone();
        wrong[^1] = (wrong[^1] + 1) % logits.VocabSize;
        // Scoring the prediction itself as input ids would change the logits, so the ids stay and only the labels differ.
        var result = PerplexityEvaluator.Evaluate(_model, [new TokenRow(ids, right), new TokenRow(ids, wrong), new TokenRow(ids, right)]);
        Assert.Equal(2.0 / 3, result.ExactMatch, 12);
        Assert.Equal(ByHand([new TokenRow(ids, right), new TokenRow(ids, wrong), new TokenRow(ids, right)]).ExactMatch, result.ExactMatch, 12);
    }

    [Fact]
    public void Rows_without_labels_keep_scoring_every_token_after_the_first()
    {
        var unlabelled = Rows[2];
        var labelledAll = new TokenRow(unlabelled.Ids, unlabelled.Ids.Select((id, t) => t == 0 ? -100 : id).ToArray());
        var a = PerplexityEvaluator.Evaluate(_model, [unlabelled]);
        var b = PerplexityEvaluator.Evaluate(_model, [labelledAll]);
        Assert.Equal(a.Loss, b.Loss, 12);
        Assert.Equal(a.Tokens, b.Tokens);
    }

    [Fact]
    public void Truncation_that_cuts_every_labelled_position_skips_the_row()
    {
        var result = PerplexityEvaluator.Evaluate(_model, Rows, new EvaluationOptions { MaxLength = 4 });
        Assert.Equal(1, result.SkippedRows);
        Assert.Equal(2, result.Rows);
        Assert.Equal(1 + 3, result.Tokens);
    }

    [Theory]
    [InlineData("{\"input_ids\": [1, 2, 3], \"labels\": [-100, 2]}", "has 3 input_ids but 2 labels")]
    [InlineData("{\"input_ids\": [1, 2, 3], \"labels\": [1, -100, -100]}", "scores no token")]
    [InlineData("{\"input_ids\": [1, 2, 3], \"labels\": [-100, 2, 256]}", "labels[2] is 256")]
    [InlineData("{\"input_ids\": [1, 2, 3], \"labels\": [-100, 2, -1]}", "labels[2] is -1")]
    [InlineData("{\"input_ids\": [1, 2, 3], \"labels\": [-100, 2, \"3\"]}", "labels[2] is \"3\", not an integer")]
    [InlineData("{\"input_ids\": [1, 2, 3], \"labels\": 3}", "\"labels\" is 3, not an array")]
    [InlineData("{\"labels\": [1, 2, 3]}", "do not make a row together")]
    [InlineData("[1, 2, 3]", "expected an object")]
    public void A_bad_labelled_row_is_reported_with_its_file_and_line(string badLine, string expected)
    {
        string path = WriteJsonl([Json(Rows[0]), badLine]);
        var e = Assert.Throws<LoraException>(() => PerplexityEvaluator.Evaluate(_model, path));
        Assert.Equal(LoraErrorKind.InvalidData, e.Kind);
        Assert.Equal(path, e.Target);
        Assert.Contains("line 2", e.Detail);
        Assert.Contains(expected, e.Detail);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{\"input_ids\": [7]}\n{\"input_ids\": [8]}")]
    public void A_file_with_nothing_to_score_is_an_error_naming_it(string content)
    {
        string path = Path.Combine(_folder, "empty.jsonl");
        File.WriteAllText(path, content);
        var e = Assert.Throws<LoraException>(() => PerplexityEvaluator.Evaluate(_model, path));
        Assert.Equal(LoraErrorKind.InvalidData, e.Kind);
        Assert.Equal(path, e.Target);
    }

    [Fact]
    public void Labels_of_the_wrong_length_are_refused_in_memory_too()
    {
        var e = Assert.Throws<LoraException>(() => new TokenRow([1, 2, 3], [-100, 2]));
        Assert.Equal(LoraErrorKind.InvalidArgument, e.Kind);
    }

    public void Dispose()
    {
        _model.Dispose();
        Directory.Delete(_folder, recursive: true);
    }
}
