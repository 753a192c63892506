using System.Security.Cryptography;
using System.Text;

namespace LoraLego.Core.Formats;

/// <summary>
/// Passes a safetensors file's bytes through to the file while taking the SHA-256 of its data section (the
/// bytes after the header: kohya's sshs_model_hash), and then writes a value into the header it let through:
/// the hash is of the bytes actually written, and the file is written once.
/// </summary>
internal sealed class DataSectionHasher(Stream inner) : Stream
{
    private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly MemoryStream _head = new();
    private long _written;
    private long _dataStart = long.MaxValue;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => _written;

    public override long Position { get => _written; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        inner.Write(buffer);
        int intoHead = (int)Math.Clamp(_dataStart - _written, 0, buffer.Length);
        if (intoHead > 0)
        {
            _head.Write(buffer[..intoHead]);
            if (_dataStart == long.MaxValue && _head.Length >= 8)
                _dataStart = 8 + (long)BitConverter.ToUInt64(_head.GetBuffer(), 0);
        }
        _written += buffer.Length;
        long dataBytes = _written - Math.Max(_dataStart, _written - buffer.Length);
        if (dataBytes > 0)
            _sha.AppendData(buffer[(int)(buffer.Length - dataBytes)..]);
    }

    /// <summary>The hex SHA-256 of the data section written so far.</summary>
    public string DataHash() => Convert.ToHexString(_sha.GetHashAndReset()).ToLowerInvariant();

    /// <summary>Overwrites <paramref name="placeholder"/> (text in the header already written) with <paramref name="value"/> of the same length.</summary>
    public void ReplaceInHeader(string placeholder, string value)
    {
        var find = Encoding.UTF8.GetBytes(placeholder);
        var replace = Encoding.UTF8.GetBytes(value);
        if (find.Length != replace.Length)
            throw new ArgumentException("the value must have the placeholder's length", nameof(value));
        int at = _head.GetBuffer().AsSpan(0, (int)Math.Min(_head.Length, _dataStart)).IndexOf(find);
        if (at < 0)
            throw new InvalidOperationException($"'{placeholder}' is not in the header");
        long end = inner.Position;
        inner.Seek(at, SeekOrigin.Begin);
        inner.Write(replace);
        inner.Seek(end, SeekOrigin.Begin);
    }

    public override void Flush() => inner.Flush();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _sha.Dispose();
            _head.Dispose();
        }
        base.Dispose(disposing);
    }
}
