using System.Text;
using System.Text.Json;

namespace LoraLego.Core.Models;

/// <summary>
/// Streams a JSONL file of rows (<see cref="TokenRow"/>): {"input_ids": [...]} with optional
/// aligned "labels" (the Hugging Face convention), {"text": "..."}, or {"prompt": "...",
/// "completion": "..."} (TRL's, only the completion scored), so an evaluation set larger than
/// memory can be scored. Text rows are tokenized with the model folder's tokenizer
/// (<see cref="ModelTokenizer"/>), loaded at the first text row so that files of ids need none.
/// Blank lines are skipped; anything else that is not such a row is an error naming the line.
/// </summary>
internal sealed class JsonlTokenReader
{
    private readonly string _path;
    private readonly int _vocabSize;
    private readonly long _length;
    private readonly string _modelFolder;
    private ModelTokenizer? _tokenizer;
    private long _bytesRead;

    public JsonlTokenReader(string path, BaseModel model)
    {
        _path = Path.GetFullPath(path);
        if (!File.Exists(_path))
            throw new LoraException(LoraErrorKind.NotFound, _path, "file not found");
        _vocabSize = model.Config.VocabSize;
        _modelFolder = model.Path;
        _length = new FileInfo(_path).Length;
    }

    /// <summary>The file, as a full path.</summary>
    public string FullPath => _path;

    /// <summary>Share of the file read so far, 0..1.</summary>
    public double Fraction => _length == 0 ? 1 : Math.Min(1, (double)_bytesRead / _length);

    public IEnumerable<TokenRow> ReadRows()
    {
        using var reader = new StreamReader(_path, Encoding.UTF8);
        int lineNumber = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            _bytesRead += Encoding.UTF8.GetByteCount(line) + 1;
            if (!string.IsNullOrWhiteSpace(line))
                yield return ParseRow(line, lineNumber);
        }
    }

    private TokenRow ParseRow(string line, int lineNumber)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Invalid(lineNumber, $"expected an object, not {root.ValueKind}; {RowShapes}");
            var kinds = RowKeys.Where(k => root.TryGetProperty(k, out _)).ToArray();
            return kinds switch
            {
                ["input_ids"] or ["input_ids", "labels"] => IdRow(root, lineNumber),
                ["text"] => new TokenRow(CheckVocabulary(Encode(root, "text", lineNumber), lineNumber, "the tokenized text")),
                ["prompt", "completion"] => PromptCompletionRow(root, lineNumber),
                [] => throw Invalid(lineNumber, RowShapes),
                _ => throw Invalid(lineNumber, $"has {string.Join(", ", kinds.Select(k => $"\"{k}\""))}, which do not make a row together; {RowShapes}"),
            };
        }
        catch (JsonException e)
        {
            throw Invalid(lineNumber, $"not valid JSON ({e.Message})", e);
        }
        catch (InvalidOperationException e)
        {
            // A string with an escaped half of a surrogate pair, or a duplicate key read as text.
            throw Invalid(lineNumber, $"has a string that is not valid text ({e.Message})", e);
        }
    }

    private const string RowShapes =
        "a row is {\"input_ids\": [...]} with optional aligned \"labels\" (-100 where not scored), {\"text\": \"...\"}, or {\"prompt\": \"...\", \"completion\": \"...\"}";

    private static readonly string[] RowKeys = ["input_ids", "labels", "text", "prompt", "completion"];

    private TokenRow IdRow(JsonElement root, int lineNumber)
    {
        var ids = CheckVocabulary(Integers(root, "input_ids", lineNumber), lineNumber, "input_ids");
        if (!root.TryGetProperty("labels", out _))
            return new TokenRow(ids);
        var labels = Integers(root, "labels", lineNumber);
        if (labels.Length != ids.Length)
            throw Invalid(lineNumber, $"has {ids.Length} input_ids but {labels.Length} labels; labels are aligned with input_ids, one each");
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] != TokenRow.Ignored && (labels[i] < 0 || labels[i] >= _vocabSize))
                throw Invalid(lineNumber, $"labels[{i}] is {labels[i]}, neither -100 (not scored) nor in the model's vocabulary 0..{_vocabSize - 1}");
        var row = new TokenRow(ids, labels);
        if (row.ScoredTokens == 0)
            throw Invalid(lineNumber, "scores no token: every label after the first is -100 (the first is never scored, as nothing precedes it)");
        return row;
    }

    // Tokenized as one text, the prompt's tokens masked (TRL's convention), so a token that spans the boundary is scored as the model sees it.
    private TokenRow PromptCompletionRow(JsonElement root, int lineNumber)
    {
        var prompt = Encode(root, "prompt", lineNumber);
        var whole = CheckVocabulary(Encode(root, "completion", lineNumber, prefix: root.GetProperty("prompt").GetString()), lineNumber, "the tokenized prompt and completion");
        var labels = (long[])whole.Clone();
        Array.Fill(labels, TokenRow.Ignored, 0, Math.Min(prompt.Length, labels.Length));
        var row = new TokenRow(whole, labels);
        if (row.ScoredTokens == 0)
            throw Invalid(lineNumber, "the completion adds no token to the prompt, so nothing is scored");
        return row;
    }

    private long[] Integers(JsonElement root, string name, int lineNumber)
    {
        var array = root.GetProperty(name);
        if (array.ValueKind != JsonValueKind.Array)
            throw Invalid(lineNumber, $"\"{name}\" is {array.GetRawText()}, not an array of integers");
        var values = new long[array.GetArrayLength()];
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long value))
                throw Invalid(lineNumber, $"{name}[{i}] is {item.GetRawText()}, not an integer");
            values[i++] = value;
        }
        return values;
    }

    private long[] Encode(JsonElement root, string name, int lineNumber, string? prefix = null)
    {
        var text = root.GetProperty(name);
        if (text.ValueKind != JsonValueKind.String)
            throw Invalid(lineNumber, $"\"{name}\" is {text.GetRawText()}, not a string");
        try
        {
            _tokenizer ??= ModelTokenizer.Load(_modelFolder);
        }
        catch (LoraException e) when (e.Target == _modelFolder)
        {
            // The folder is the problem, but the user also needs to know which data asked for a tokenizer.
            throw new LoraException(e.Kind, _modelFolder, $"{e.Detail} (line {lineNumber} of {_path} is a text row)", e);
        }
        return _tokenizer.Encode(prefix + text.GetString());
    }

    // A tokenizer with more entries than the model's embedding (added tokens, a mismatched folder) yields ids the model cannot look up.
    private long[] CheckVocabulary(long[] row, int lineNumber, string source)
    {
        for (int i = 0; i < row.Length; i++)
            if (row[i] < 0 || row[i] >= _vocabSize)
                throw Invalid(lineNumber, $"{source}[{i}] is {row[i]}, outside the model's vocabulary 0..{_vocabSize - 1}");
        return row;
    }

    private LoraException Invalid(int lineNumber, string message, Exception? inner = null) =>
        new(LoraErrorKind.InvalidData, _path, $"line {lineNumber}: {message}", inner);
}
