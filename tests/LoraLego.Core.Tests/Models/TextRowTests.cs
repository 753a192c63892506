using System.Text.Json;
using LoraLego.Core.Models;
using Microsoft.ML.Tokenizers;

namespace LoraLego.Core.Tests.Models;

/// <summary>{"text": "..."} rows, tokenized with the tokenizer files in the model folder.</summary>
public sealed class TextRowTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("loralego-text-").FullName;
    private readonly List<BaseModel> _models = [];

    private static readonly string[] Texts =
    [
        "the quick brown fox jumps over a lazy dog",
        "small models learn to predict the next token",
        "Zebra café: text the tokenizer has not seen",
    ];

    // The tiny llama's weights with the given tokenizer files beside them, as a Hugging Face folder has them.
    private BaseModel ModelWith(string? tokenizerKind, string? tokenizerConfig = null)
    {
        string model = Path.Combine(_folder, "model-" + _models.Count);
        Directory.CreateDirectory(model);
        foreach (var file in Directory.GetFiles(GoldenLogits.BaseModelFolder))
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        if (tokenizerKind is not null)
            foreach (var file in Directory.GetFiles(Fixtures.TinyTokenizer(tokenizerKind)))
                File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        if (tokenizerConfig is not null)
            File.WriteAllText(Path.Combine(model, "tokenizer_config.json"), tokenizerConfig);
        var loaded = BaseModel.Load(model, new BaseModelOptions { Device = Core.Compute.ComputeDevice.Cpu });
        _models.Add(loaded);
        return loaded;
    }

    private string WriteJsonl(string name, IEnumerable<object> rows)
    {
        string path = Path.Combine(_folder, name);
        File.WriteAllLines(path, rows.Select(r => JsonSerializer.Serialize(r)));
        return path;
    }

    private static long[][] SentencePieceIds(bool addBos)
    {
        using var stream = File.OpenRead(Path.Combine(Fixtures.TinyTokenizer("sentencepiece"), "tokenizer.model"));
        var tokenizer = SentencePieceTokenizer.Create(stream, addBos, addEndOfSentence: false);
        return Texts.Select(t => tokenizer.EncodeToIds(t).Select(id => (long)id).ToArray()).ToArray();
    }

    private static long[][] BpeIds()
    {
        string folder = Fixtures.TinyTokenizer("gpt2-bpe");
        using var vocab = File.OpenRead(Path.Combine(folder, "vocab.json"));
        using var merges = File.OpenRead(Path.Combine(folder, "merges.txt"));
        var tokenizer = CodeGenTokenizer.Create(vocab, merges, addPrefixSpace: false, addBeginOfSentence: false, addEndOfSentence: false);
        return Texts.Select(t => tokenizer.EncodeToIds(t).Select(id => (long)id).ToArray()).ToArray();
    }

    private void AssertSameLoss(BaseModel model, long[][] ids)
    {
        Assert.All(ids, row => Assert.True(row.Length > 2 && row.All(id => id is >= 0 and < 256)));
        var fromText = PerplexityEvaluator.Evaluate(model, WriteJsonl("text.jsonl", Texts.Select(t => new { text = t })));
        var fromIds = PerplexityEvaluator.Evaluate(model, WriteJsonl("ids.jsonl", ids.Select(r => new { input_ids = r })));
        Assert.Equal(fromIds.Tokens, fromText.Tokens);
        Assert.Equal(fromIds.Loss, fromText.Loss, 12);
    }

    [Fact]
    public void SentencePiece_text_rows_give_the_loss_of_their_ids_with_bos()
    {
        var ids = SentencePieceIds(addBos: true);
        Assert.All(ids, row => Assert.Equal(1, row[0]));
        AssertSameLoss(ModelWith("sentencepiece"), ids);
    }

    [Fact]
    public void Add_bos_token_false_in_tokenizer_config_leaves_bos_out()
    {
        var ids = SentencePieceIds(addBos: false);
        Assert.All(ids, row => Assert.NotEqual(1, row[0]));
        AssertSameLoss(ModelWith("sentencepiece", """{"add_bos_token": false}"""), ids);
    }

    [Fact]
    public void Byte_level_bpe_text_rows_give_the_loss_of_their_ids()
    {
        AssertSameLoss(ModelWith("gpt2-bpe"), BpeIds());
    }

    [Fact]
    public void Bpe_bos_comes_from_tokenizer_config()
    {
        var ids = BpeIds().Select(r => r.Prepend(106L).ToArray()).ToArray();
        AssertSameLoss(ModelWith("gpt2-bpe", """{"add_bos_token": true, "bos_token": {"content": "<|endoftext|>"}}"""), ids);
    }

    [Fact]
    public void Text_and_id_rows_mix_in_one_file()
    {
        var model = ModelWith("sentencepiece");
        var ids = SentencePieceIds(addBos: true);
        var mixed = PerplexityEvaluator.Evaluate(model, WriteJsonl("mixed.jsonl",
            [new { text = Texts[0] }, new { input_ids = ids[1] }, new { text = Texts[2] }]));
        var allIds = PerplexityEvaluator.Evaluate(model, ids);
        Assert.Equal(3, mixed.Rows);
        Assert.Equal(allIds.Tokens, mixed.Tokens);
        Assert.Equal(allIds.Loss, mixed.Loss, 12);
    }

    [Fact]
    public void Prompt_completion_rows_score_only_the_completion_tokens()
    {
        var model = ModelWith("sentencepiece");
        using var stream = File.OpenRead(Path.Combine(Fixtures.TinyTokenizer("sentencepiece"), "tokenizer.model"));
        var tokenizer = SentencePieceTokenizer.Create(stream, true, addEndOfSentence: false);
        string prompt = "the quick brown fox", completion = " jumps over a lazy dog";
        var whole = tokenizer.EncodeToIds(prompt + completion).Select(id => (long)id).ToArray();
        int promptLength = tokenizer.EncodeToIds(prompt).Count;
        var labels = whole.Select((id, t) => t < promptLength ? TokenRow.Ignored : id).ToArray();
        Assert.True(whole.Length - promptLength >= 3);

        var fromPair = PerplexityEvaluator.Evaluate(model, WriteJsonl("pairs.jsonl", [new { prompt, completion }]));
        var fromLabels = PerplexityEvaluator.Evaluate(model, [new TokenRow(whole, labels)]);
        var everyToken = PerplexityEvaluator.Evaluate(model, [whole]);
        Assert.Equal(whole.Length - promptLength, fromPair.Tokens);
        Assert.Equal(fromLabels.Loss, fromPair.Loss, 12);
        Assert.NotEqual(everyToken.Loss, fromPair.Loss, 3);
    }

    [Fact]
    public void A_folder_without_a_tokenizer_rejects_text_rows_naming_the_folder()
    {
        var model = ModelWith(null);
        string path = WriteJsonl("mixed.jsonl", [new { input_ids = new[] { 1, 2, 3 } }, new { text = "hello" }]);
        var e = Assert.Throws<LoraException>(() => PerplexityEvaluator.Evaluate(model, path));
        Assert.Equal(LoraErrorKind.Unsupported, e.Kind);
        Assert.Equal(model.Path, e.Target);
        Assert.Contains("tokenizer.model", e.Detail);
        Assert.Contains("vocab.json + merges.txt", e.Detail);
        Assert.Contains("line 2", e.Detail);
    }

    [Fact]
    public void Tokenizer_json_alone_is_named_as_unreadable()
    {
        var model = ModelWith(null);
        File.WriteAllText(Path.Combine(model.Path, "tokenizer.json"), "{}");
        var e = Assert.Throws<LoraException>(() => PerplexityEvaluator.Evaluate(model, WriteJsonl("text.jsonl", [new { text = "hello" }])));
        Assert.Equal(LoraErrorKind.Unsupported, e.Kind);
        Assert.Contains("only tokenizer.json", e.Detail);
    }

    [Fact]
    public void A_folder_without_a_tokenizer_still_reads_id_rows()
    {
        var result = PerplexityEvaluator.Evaluate(ModelWith(null), WriteJsonl("ids.jsonl", [new { input_ids = new[] { 1, 2, 3 } }]));
        Assert.Equal(2, result.Tokens);
    }

    [Theory]
    [InlineData("{\"text\": 5}", "not a string")]
    [InlineData("{\"text\": \"a\", \"input_ids\": [1, 2]}", "do not make a row together")]
    [InlineData("{\"prompt\": \"the\"}", "do not make a row together")]
    [InlineData("{\"prompt\": \"the\", \"completion\": 3}", "\"completion\" is 3, not a string")]
    public void A_bad_text_row_is_reported_with_its_line(string badLine, string expected)
    {
        string path = Path.Combine(_folder, "bad.jsonl");
        File.WriteAllLines(path, ["{\"text\": \"the fox\"}", badLine]);
        var e = Assert.Throws<LoraException>(() => PerplexityEvaluator.Evaluate(ModelWith("sentencepiece"), path));
        Assert.Equal(LoraErrorKind.InvalidData, e.Kind);
        Assert.Contains("line 2", e.Detail);
        Assert.Contains(expected, e.Detail);
    }

    public void Dispose()
    {
        foreach (var model in _models)
            model.Dispose();
        Directory.Delete(_folder, recursive: true);
    }
}
