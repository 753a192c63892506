using System.Text;
using System.Text.Json;

namespace LoraLego.Core.Models;

/// <summary>
/// Streams a JSONL file of {"input_ids": [...]} rows, so an evaluation set larger than memory
/// can be scored. Blank lines are skipped; anything else that is not such a row is an error
/// naming the line.
/// </summary>
internal sealed class JsonlTokenReader
{
    private readonly string _path;
    private readonly int _vocabSize;
    private readonly long _length;
    private long _bytesRead;

    public JsonlTokenReader(string path, int vocabSize)
    {
        _path = Path.GetFullPath(path);
        if (!File.Exists(_path))
            throw new LoraException(LoraErrorKind.NotFound, _path, "file not found");
        _vocabSize = vocabSize;
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
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("input_ids", out var ids)
                || ids.ValueKind != JsonValueKind.Array)
                throw Invalid(lineNumber, "expected an object with an \"input_ids\" array");
            var row = new long[ids.GetArrayLength()];
            int i = 0;
            foreach (var id in ids.EnumerateArray())
            {
                if (id.ValueKind != JsonValueKind.Number || !id.TryGetInt64(out long value))
                    throw Invalid(lineNumber, $"input_ids[{i}] is {id.GetRawText()}, not an integer");
                if (value < 0 || value >= _vocabSize)
                    throw Invalid(lineNumber, $"input_ids[{i}] is {value}, outside the model's vocabulary 0..{_vocabSize - 1}");
                row[i++] = value;
            }
            return row;
        }
        catch (JsonException e)
        {
            throw Invalid(lineNumber, $"not valid JSON ({e.Message})", e);
        }
    }

    private LoraException Invalid(int lineNumber, string message, Exception? inner = null) =>
        new(LoraErrorKind.InvalidData, _path, $"line {lineNumber}: {message}", inner);
}
