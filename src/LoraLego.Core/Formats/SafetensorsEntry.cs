namespace LoraLego.Core.Formats;

/// <summary>One tensor's header record: where its bytes lie relative to the end of the header.</summary>
public sealed record SafetensorsEntry(string Name, SafetensorsDType DType, long[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    public long ByteLength => End - Begin;

    public override string ToString() => $"{Name} {DType}[{string.Join("x", Shape)}]";
}
