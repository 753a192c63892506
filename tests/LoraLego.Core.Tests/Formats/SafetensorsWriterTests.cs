using LoraLego.Core.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Formats;

public class SafetensorsWriterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loralego-st-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(SafetensorsDType.F32)]
    [InlineData(SafetensorsDType.F16)]
    [InlineData(SafetensorsDType.BF16)]
    [InlineData(SafetensorsDType.F64)]
    public void Written_tensors_read_back_equal(SafetensorsDType dtype)
    {
        var x = torch.randn(5, 3, generator: torch.manual_seed(1)).to(dtype.ToScalarType());
        var y = torch.arange(7, dtype: ScalarType.Int64);
        string path = Path.Combine(_dir, "t.safetensors");
        SafetensorsWriter.Write(path, [
            new SafetensorsWriteItem("x", dtype, [5, 3], () => x.clone()),
            new SafetensorsWriteItem("y", SafetensorsDType.I64, [7], () => y.clone()),
        ], new Dictionary<string, string> { ["format"] = "pt" });
        using var file = SafetensorsFile.Open(path);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(0, file.DataStart % 8);
        using var xr = file.ReadTensor("x");
        using var yr = file.ReadTensor("y");
        Assert.Equal(dtype.ToScalarType(), xr.dtype);
        Assert.True(xr.equal(x).all().item<bool>());
        Assert.True(yr.equal(y).all().item<bool>());
    }

    [Theory]
    [InlineData(SafetensorsDType.F16)]
    [InlineData(SafetensorsDType.BF16)]
    public void Float32_written_as_a_half_dtype_has_libtorchs_bytes_across_chunks(SafetensorsDType dtype)
    {
        // Over a chunk of the writer's span loops (2^18 values) and not a multiple of 16, so every path is taken;
        // scaled normals reach F16's subnormals and its halfway cases, and -0 keeps its sign.
        var x = (torch.randn(700_001, generator: torch.manual_seed(5)) * torch.pow(2.0, torch.randint(-26, 15, 700_001, generator: torch.manual_seed(6)))).to_type(ScalarType.Float32);
        x[3] = torch.tensor(-0.0f);
        string path = Path.Combine(_dir, "h.safetensors");
        SafetensorsWriter.Write(path, [new SafetensorsWriteItem("x", dtype, [700_001], () => x.clone())]);
        using var file = SafetensorsFile.Open(path);
        using var written = file.ReadTensor("x");
        using var expected = x.to_type(dtype.ToScalarType());
        Assert.Equal(expected.bytes.ToArray(), written.bytes.ToArray());
    }

    [Fact]
    public void A_value_past_f16s_range_is_refused_by_name_once_converted_and_nothing_is_left()
    {
        var x = torch.ones(300_000);
        x[299_990] = torch.tensor(70_000f);
        string path = Path.Combine(_dir, "over.safetensors");
        var e = Assert.Throws<LoraException>(() => SafetensorsWriter.Write(path, [new SafetensorsWriteItem("big", SafetensorsDType.F16, [300_000], () => x.clone())]));
        Assert.Equal(FiniteCheck.ErrorId, e.ErrorId);
        Assert.Contains("tensor 'big' has 1 non-finite value (0 NaN, 1 infinite; the first, +Inf, at [299990]) once converted to F16", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public void A_failing_producer_leaves_neither_the_file_nor_a_temporary()
    {
        string path = Path.Combine(_dir, "broken.safetensors");
        Assert.Throws<InvalidOperationException>(() => SafetensorsWriter.Write(path, [
            new SafetensorsWriteItem("x", SafetensorsDType.F32, [2], () => torch.ones(2)),
            new SafetensorsWriteItem("y", SafetensorsDType.F32, [2], () => throw new InvalidOperationException("interrupted")),
        ]));
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public void A_cancelled_write_stops_between_tensors_and_leaves_nothing()
    {
        string path = Path.Combine(_dir, "cancelled.safetensors");
        using var cancel = new CancellationTokenSource();
        int produced = 0;
        Tensor Produce()
        {
            if (++produced == 2)
                cancel.Cancel();
            return torch.ones(4);
        }
        var items = Enumerable.Range(0, 5).Select(i => new SafetensorsWriteItem($"t{i}", SafetensorsDType.F32, [4], Produce)).ToList();
        Assert.ThrowsAny<OperationCanceledException>(() => SafetensorsWriter.Write(path, items, cancellationToken: cancel.Token));
        Assert.Equal(2, produced);
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public void A_produced_shape_that_disagrees_with_the_header_is_refused()
    {
        string path = Path.Combine(_dir, "shape.safetensors");
        var e = Assert.Throws<LoraException>(() => SafetensorsWriter.Write(path, [
            new SafetensorsWriteItem("x", SafetensorsDType.F32, [2, 2], () => torch.ones(3)),
        ]));
        Assert.Equal(LoraErrorKind.ShapeMismatch, e.Kind);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Zero_element_tensors_round_trip()
    {
        string path = Path.Combine(_dir, "empty.safetensors");
        SafetensorsWriter.Write(path, [new SafetensorsWriteItem("e", SafetensorsDType.F32, [0, 4], () => torch.zeros(0, 4))]);
        using var file = SafetensorsFile.Open(path);
        using var e = file.ReadTensor("e");
        Assert.Equal(new long[] { 0, 4 }, e.shape);
    }
}
