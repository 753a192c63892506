using Microsoft.Win32.SafeHandles;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Core.Formats;

/// <summary>
/// A safetensors file opened for reading: the header is parsed and validated up front, the
/// tensor bytes are only read when a tensor is asked for, so opening
/// fifty adapters costs fifty headers, not fifty files of weights.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    // A header larger than this is not a LoRA or model header but a corrupt length field.
    private const long MaxHeaderLength = 100L * 1024 * 1024;

    private readonly Dictionary<string, SafetensorsEntry> _entries;
    private readonly DateTime _writeTime;
    private readonly object _keepLock = new();
    private SafeFileHandle? _kept;
    private int _keepers;
    private volatile bool _disposed;

    private SafetensorsFile(string path, long dataStart, long fileLength, DateTime writeTime, Dictionary<string, SafetensorsEntry> entries, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        _writeTime = writeTime;
        DataStart = dataStart;
        FileLength = fileLength;
        _entries = entries;
        Metadata = metadata;
    }

    public string Path { get; }

    /// <summary>Byte offset of the data section (8 + header length).</summary>
    public long DataStart { get; }

    public long FileLength { get; }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    public IReadOnlyCollection<SafetensorsEntry> Entries => _entries.Values;

    public bool Contains(string name) => _entries.ContainsKey(name);

    public SafetensorsEntry this[string name] =>
        _entries.TryGetValue(name, out var e) ? e : throw new LoraException(LoraErrorKind.NotFound, Path, $"no tensor named '{name}'");

    public static SafetensorsFile Open(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        if (!File.Exists(path))
            throw new LoraException(LoraErrorKind.NotFound, path, "file not found");
        try
        {
            return OpenHeader(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw LoraException.From(e, path)!;
        }
    }

    private static SafetensorsFile OpenHeader(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var writeTime = File.GetLastWriteTimeUtc(path);
        long length = stream.Length;
        if (length < 8)
            throw new LoraException(LoraErrorKind.InvalidData, path, $"truncated safetensors file: {length} bytes, less than the 8-byte header length");
        Span<byte> lenBytes = stackalloc byte[8];
        stream.ReadExactly(lenBytes);
        ulong headerLength = BitConverter.ToUInt64(lenBytes);
        if (headerLength > (ulong)(length - 8))
            throw new LoraException(LoraErrorKind.InvalidData, path, $"header length {headerLength} is larger than the file ({length} bytes): truncated or not a safetensors file");
        if ((long)headerLength > MaxHeaderLength)
            throw new LoraException(LoraErrorKind.InvalidData, path, $"header length {headerLength} exceeds the {MaxHeaderLength}-byte limit");
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        long dataStart = 8 + (long)headerLength;
        var (entries, metadata) = ParseHeader(path, header, length - dataStart);
        return new SafetensorsFile(path, dataStart, length, writeTime, entries, metadata);
    }

    private static (Dictionary<string, SafetensorsEntry>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw new LoraException(LoraErrorKind.InvalidData, path, $"header is not valid JSON ({e.Message})", e);
        }
        using (doc)
        {
            try
            {
                return ParseEntries(path, doc, dataLength);
            }
            catch (InvalidOperationException e)
            {
                // Found by fuzzing: a name or value whose bytes are not UTF-8, or an escaped half of a surrogate pair.
                throw new LoraException(LoraErrorKind.InvalidData, path, $"header has a name or value that is not valid text ({e.Message})", e);
            }
        }
    }

    private static (Dictionary<string, SafetensorsEntry>, Dictionary<string, string>) ParseEntries(string path, JsonDocument doc, long dataLength)
    {
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new LoraException(LoraErrorKind.InvalidData, path, "header is not a JSON object");
            var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw new LoraException(LoraErrorKind.InvalidData, path, "__metadata__ is not an object");
                    foreach (var m in prop.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                entries[prop.Name] = ParseEntry(path, prop.Name, prop.Value, dataLength);
            }
            CheckNoOverlap(path, entries.Values);
            return (entries, metadata);
        }
    }

    private static SafetensorsEntry ParseEntry(string path, string name, JsonElement e, long dataLength)
    {
        string where = $"tensor '{name}'";
        if (e.ValueKind != JsonValueKind.Object
            || !e.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String
            || !e.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array
            || !e.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
            throw new LoraException(LoraErrorKind.InvalidData, path, $"{where} needs dtype, shape and two data_offsets");
        string dtypeText = dtypeEl.GetString()!;
        if (!SafetensorsDTypes.TryParse(dtypeText, out var dtype))
            throw new LoraException(LoraErrorKind.Unsupported, path, $"{where} has unsupported dtype '{dtypeText}' (supported: {string.Join(", ", Enum.GetNames<SafetensorsDType>())})");
        var shape = new long[shapeEl.GetArrayLength()];
        int i = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0)
                throw new LoraException(LoraErrorKind.InvalidData, path, $"{where} has an invalid shape {shapeEl.GetRawText()}");
            shape[i++] = v;
        }
        long[] off = new long[2];
        i = 0;
        foreach (var o in offEl.EnumerateArray())
        {
            if (o.ValueKind != JsonValueKind.Number || !o.TryGetInt64(out long v) || v < 0)
                throw new LoraException(LoraErrorKind.InvalidData, path, $"{where} has invalid data_offsets {offEl.GetRawText()}");
            off[i++] = v;
        }
        if (off[0] > off[1] || off[1] > dataLength)
            throw new LoraException(LoraErrorKind.InvalidData, path, $"{where} has data_offsets [{off[0]}, {off[1]}] outside the {dataLength}-byte data section");
        var entry = new SafetensorsEntry(name, dtype, shape, off[0], off[1]);
        long expected;
        try
        {
            expected = shape.Contains(0) ? 0 : checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * dtype.ElementSize());
        }
        catch (OverflowException)
        {
            throw new LoraException(LoraErrorKind.InvalidData, path, $"{where} has a shape too large to address");
        }
        if (expected != entry.ByteLength)
            throw new LoraException(LoraErrorKind.InvalidData, path, $"{where}: shape [{string.Join(", ", shape)}] of {dtype} needs {expected} bytes but its data_offsets span {entry.ByteLength}");
        return entry;
    }

    private static void CheckNoOverlap(string path, IEnumerable<SafetensorsEntry> entries)
    {
        SafetensorsEntry? previous = null;
        foreach (var e in entries.Where(e => e.ByteLength > 0).OrderBy(e => e.Begin))
        {
            if (previous is not null && e.Begin < previous.End)
                throw new LoraException(LoraErrorKind.InvalidData, path, $"tensors '{previous.Name}' and '{e.Name}' overlap in the data section");
            previous = e;
        }
    }

    /// <summary>Copies one tensor out of the file into a new CPU tensor of its stored dtype.</summary>
    /// <remarks>
    /// The tensor's byte range is read straight into the tensor's memory (positioned reads, no map: a map per
    /// tensor cost a page fault per 4 KiB and a TLB shootdown on unmapping), and the file handle is released again
    /// once it is read (unless a <see cref="KeepOpen"/> scope holds it): an adapter object holds no handle on its
    /// file between reads, so the file can be replaced, moved or deleted after a merge while the object lives on.
    /// A file that changed since it was opened (length or write time) is refused rather than read.
    /// </remarks>
    public Tensor ReadTensor(string name)
    {
        var entry = this[name];
        ObjectDisposedException.ThrowIf(_disposed, this);
        var tensor = torch.empty(entry.Shape, entry.DType.ToScalarType());
        if (entry.ByteLength == 0)
            return tensor;
        try
        {
            using var handle = OpenUnchanged();
            if (!TensorBytes.ReadInto(tensor, handle.Handle, DataStart + entry.Begin, entry.ByteLength))
                throw EndsPastFile(name);
            return tensor;
        }
        catch (Exception e)
        {
            tensor.Dispose();
            if (e is IOException or UnauthorizedAccessException)
                throw LoraException.From(e, Path)!;
            throw;
        }
    }

    /// <summary>
    /// Copies the stored bytes of the tensors <paramref name="names"/>, one after the other, into
    /// <paramref name="destination"/> (at least their byte lengths together), as <see cref="ReadTensor"/> reads them,
    /// for span loops that need no tensor (and so no fresh memory per read). Tensors that lie one after the other in
    /// the file are read in one piece.
    /// </summary>
    internal void ReadBytes(IReadOnlyList<string> names, Span<byte> destination)
    {
        var entries = names.Select(n => this[n]).ToList();
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            using var handle = OpenUnchanged();
            for (int first = 0, next; first < entries.Count; first = next)
            {
                long end = entries[first].End;
                for (next = first + 1; next < entries.Count && entries[next].Begin == end; next++)
                    end = entries[next].End;
                int length = checked((int)(end - entries[first].Begin));
                if (!TensorBytes.ReadInto(destination[..length], handle.Handle, DataStart + entries[first].Begin))
                    throw EndsPastFile(entries[next - 1].Name);
                destination = destination[length..];
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw LoraException.From(e, Path)!;
        }
    }

    /// <summary>
    /// Keeps one handle on each of <paramref name="files"/>, opened at its first read, until every scope taken is
    /// disposed: a merge reads thousands of tensors, and opening the file for each cost an open, a close and a stat
    /// more per read. Each read still refuses a file changed since it was imported, by its length and write time as
    /// without a scope.
    /// </summary>
    internal static IDisposable KeepOpen(IEnumerable<SafetensorsFile> files)
    {
        var kept = files.Distinct().ToList();
        foreach (var file in kept)
            lock (file._keepLock)
                file._keepers++;
        return new KeepScope(kept);
    }

    private sealed class KeepScope(IReadOnlyList<SafetensorsFile> files) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
                return;
            foreach (var file in files)
                lock (file._keepLock)
                    if (--file._keepers == 0)
                    {
                        file._kept?.Dispose();
                        file._kept = null;
                    }
        }
    }

    /// <summary>A handle to read through: the kept one (held by a reference until the read is done) or one of its own.</summary>
    private readonly struct ReadHandle(SafeFileHandle handle, bool kept) : IDisposable
    {
        public SafeFileHandle Handle => handle;

        public void Dispose()
        {
            if (kept)
                handle.DangerousRelease();
            else
                handle.Dispose();
        }
    }

    private ReadHandle OpenUnchanged()
    {
        var handle = Acquire();
        if (RandomAccess.GetLength(handle.Handle) == FileLength && File.GetLastWriteTimeUtc(Path) == _writeTime)
            return handle;
        handle.Dispose();
        throw new LoraException(LoraErrorKind.InvalidData, Path, "the file changed after it was imported; import it again", errorId: "FileChanged");
    }

    private ReadHandle Acquire()
    {
        lock (_keepLock)
            if (_keepers > 0)
            {
                _kept ??= OpenRead();
                bool added = false;
                _kept.DangerousAddRef(ref added);
                return new ReadHandle(_kept, kept: true);
            }
        return new ReadHandle(OpenRead(), kept: false);
    }

    private SafeFileHandle OpenRead() => File.OpenHandle(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);

    private LoraException EndsPastFile(string name) =>
        new(LoraErrorKind.InvalidData, Path, $"tensor '{name}' ends past the end of the file", errorId: "FileChanged");

    /// <summary>Nothing is held between reads outside a <see cref="KeepOpen"/> scope; after disposal reads are refused.</summary>
    public void Dispose() => _disposed = true;
}
