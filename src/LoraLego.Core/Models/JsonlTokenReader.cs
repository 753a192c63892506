using System.Text;
using System.Text.Json;

namespace LoraLego.Core.Models;

/// <summary>
/// Streams a JSONL file of {"input_ids": [...]} or {"text": "..."} rows, so an evaluation set
/// larger than memory can be scored. Text rows are tokenized with the model folder's tokenizer
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

    /// <summary>Share of the file read so far, 0..1.</summary>
    public double Fraction => _length == 0 ? 1 : Math.Min(1, (double)_bytesRead / _length);

    public IEnumerable<long[]> ReadRows()
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

    private long[] ParseRow(string line, int lineNumber)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            bool hasIds = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("input_ids", out _);
            bool hasText = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("text", out _);
            if (hasIds && hasText)
                throw Invalid(lineNumber, "has both \"input_ids\" and \"text\"; give one");
            if (hasText)
                return CheckVocabulary(TextRow(root.GetProperty("text"), lineNumber), lineNumber, "the tokenized text");
            if (!hasIds || root.GetProperty("input_ids").ValueKind != JsonValueKind.Array)
                throw Invalid(lineNumber, "expected an object with an \"input_ids\" array or a \"text\" string");
            var ids = root.GetProperty("input_ids");
            var row = new long[ids.GetArrayLength()];
            int i = 0;
            foreach (var id in ids.EnumerateArray())
            {
                if (id.ValueKind != JsonValueKind.Number || !id.TryGetInt64(out long value))
                    throw Invalid(lineNumber, $"input_ids[{i}] is {id.GetRawText()}, not an integer");
                row[i++] = value;
            }
            return CheckVocabulary(row, lineNumber, "input_ids");
        }
        catch (JsonException e)
        {
            throw Invalid(lineNumber, $"not valid JSON ({e.Message})", e);
        }
    }

    private long[] TextRow(JsonElement text, int lineNumber)
    {
        if (text.ValueKind != JsonValueKind.String)
            throw Invalid(lineNumber, $"\"text\" is {text.GetRawText()}, not a string");
        try
        {
            _tokenizer ??= ModelTokenizer.Load(_modelFolder);
        }
        catch (LoraException e) when (e.Target == _modelFolder)
        {
            // The folder is the problem, but the user also needs to know which data asked for a tokenizer.
            throw new LoraException(e.Kind, _modelFolder, $"{e.Detail} (line {lineNumber} of {_path} is a text row)", e);
        }
        return _tokenizer.Encode(text.GetString()!);
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
