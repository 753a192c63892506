using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace LoraLego.Core.Models;

/// <summary>
/// Turns text into token ids with the tokenizer files of a Hugging Face model folder, as far as
/// Microsoft.ML.Tokenizers reads them: a SentencePiece tokenizer.model (Llama, Mistral, Gemma),
/// else a byte-level BPE vocab.json + merges.txt (GPT-2 style). tokenizer.json alone is not
/// read, as the library has no loader for the general Hugging Face format.
/// </summary>
/// <remarks>
/// A beginning-of-sentence token is prepended when tokenizer_config.json's add_bos_token says
/// so; without that key, SentencePiece tokenizers add it (the Llama tokenizer's default) and BPE
/// tokenizers do not (GPT-2's). No end-of-sentence token is appended: an evaluation row is
/// scored as the text it holds.
/// </remarks>
internal sealed class ModelTokenizer
{
    /// <summary>What a folder needs for text rows, for error messages.</summary>
    public const string ReadableFiles = "tokenizer.model (SentencePiece) or vocab.json + merges.txt (byte-level BPE)";

    private readonly Tokenizer _tokenizer;
    private readonly int? _bosId;

    private ModelTokenizer(Tokenizer tokenizer, int? bosId)
    {
        _tokenizer = tokenizer;
        _bosId = bosId;
    }

    /// <summary>Loads the tokenizer of a model folder; Unsupported when it has none this library reads.</summary>
    public static ModelTokenizer Load(string modelFolder)
    {
        var config = TokenizerConfig.Read(modelFolder);
        string sentencePiece = Path.Combine(modelFolder, "tokenizer.model");
        string vocab = Path.Combine(modelFolder, "vocab.json"), merges = Path.Combine(modelFolder, "merges.txt");
        try
        {
            if (File.Exists(sentencePiece))
            {
                using var stream = File.OpenRead(sentencePiece);
                var tokenizer = SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false);
                return new ModelTokenizer(tokenizer, config.AddBos ?? true ? tokenizer.BeginningOfSentenceId : null);
            }
            if (File.Exists(vocab) && File.Exists(merges))
            {
                using var vocabStream = File.OpenRead(vocab);
                using var mergesStream = File.OpenRead(merges);
                var tokenizer = CodeGenTokenizer.Create(vocabStream, mergesStream, config.AddPrefixSpace ?? false,
                    addBeginOfSentence: false, addEndOfSentence: false);
                return new ModelTokenizer(tokenizer, config.AddBos ?? false ? BpeBosId(tokenizer, config, modelFolder) : null);
            }
        }
        catch (Exception e) when (e is not LoraException)
        {
            // The library reports malformed files with assorted exception types; the user needs the folder and the cause.
            throw new LoraException(LoraErrorKind.InvalidData, modelFolder, $"cannot read the tokenizer: {e.Message}", e);
        }
        string found = File.Exists(Path.Combine(modelFolder, "tokenizer.json")) ? "only tokenizer.json, which Microsoft.ML.Tokenizers does not read" : "no tokenizer files";
        throw new LoraException(LoraErrorKind.Unsupported, modelFolder,
            $"text rows need the model's tokenizer, but the folder has {found}; add {ReadableFiles}, or give rows of input_ids");
    }

    /// <summary>The ids of a text, with the beginning-of-sentence token where the model's tokenizer adds one.</summary>
    public long[] Encode(string text)
    {
        var ids = _tokenizer.EncodeToIds(text);
        int offset = _bosId is null ? 0 : 1;
        var row = new long[ids.Count + offset];
        if (_bosId is int bos)
            row[0] = bos;
        for (int i = 0; i < ids.Count; i++)
            row[i + offset] = ids[i];
        return row;
    }

    private static int BpeBosId(CodeGenTokenizer tokenizer, TokenizerConfig config, string modelFolder)
    {
        // CodeGenTokenizer's own BOS is GPT-2's <|endoftext|>; the model's may differ, so it is looked up by name.
        if (config.BosToken is { } name && tokenizer.Vocabulary.TryGetValue(name, out int id))
            return id;
        throw new LoraException(LoraErrorKind.Unsupported, modelFolder,
            $"tokenizer_config.json asks for a beginning-of-sentence token, but its bos_token ({config.BosToken ?? "none"}) is not in vocab.json");
    }

    private sealed record TokenizerConfig(bool? AddBos, bool? AddPrefixSpace, string? BosToken)
    {
        public static TokenizerConfig Read(string modelFolder)
        {
            string path = Path.Combine(modelFolder, "tokenizer_config.json");
            if (!File.Exists(path))
                return new TokenizerConfig(null, null, null);
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
                var root = doc.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                    throw new LoraException(LoraErrorKind.InvalidData, path, "expected a JSON object");
                return new TokenizerConfig(Flag(root, "add_bos_token"), Flag(root, "add_prefix_space"), TokenName(root, "bos_token"));
            }
            catch (JsonException e)
            {
                throw new LoraException(LoraErrorKind.InvalidData, path, $"not valid JSON ({e.Message})", e);
            }
        }

        private static bool? Flag(JsonElement root, string name) =>
            root.TryGetProperty(name, out var value) && value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean() : null;

        // Special tokens are written either as a string or as an AddedToken object with a "content".
        private static string? TokenName(JsonElement root, string name)
        {
            if (!root.TryGetProperty(name, out var value))
                return null;
            if (value.ValueKind == JsonValueKind.String)
                return value.GetString();
            return value.ValueKind == JsonValueKind.Object && value.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String
                ? content.GetString()
                : null;
        }
    }
}
