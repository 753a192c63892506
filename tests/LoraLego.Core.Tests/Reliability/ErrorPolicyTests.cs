using System.Runtime.InteropServices;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Reliability;

/// <summary>The error policy at Core's boundary: one exception type, stable ids, the input named, no stack traces.</summary>
public class ErrorPolicyTests
{
    [Fact]
    public void NativeErrorsLoseTheirStackTrace()
    {
        var native = new ExternalException("linalg.svd: The algorithm failed to converge because the input matrix contained non-finite values.\n" +
            "Exception raised from linalg_svd at /pytorch/aten/src/ATen/native/BatchLinearAlgebra.cpp:3399 (most recent call first):\n" +
            "frame #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x9d (0x7f in libc10.so)\nframe #1: ...");
        var e = LoraException.From(native, "model.layers.0.q_proj")!;
        Assert.Equal(LoraErrorKind.ComputeFailed, e.Kind);
        Assert.Equal("NativeError", e.ErrorId);
        Assert.StartsWith("model.layers.0.q_proj: libtorch failed: linalg.svd: The algorithm failed to converge", e.Message);
        Assert.DoesNotContain("frame #", e.Message);
        Assert.DoesNotContain("Exception raised from", e.Message);
    }

    [Theory]
    [InlineData(typeof(UnauthorizedAccessException), LoraErrorKind.PermissionDenied, "PermissionDenied")]
    [InlineData(typeof(PathTooLongException), LoraErrorKind.InvalidArgument, "PathTooLong")]
    [InlineData(typeof(FileNotFoundException), LoraErrorKind.NotFound, "NotFound")]
    [InlineData(typeof(IOException), LoraErrorKind.ReadFailed, "IOError")]
    public void FileSystemErrorsNameTheTargetAndNotTheirPath(Type type, LoraErrorKind kind, string id)
    {
        var inner = (Exception)Activator.CreateInstance(type, "Access to the path '/x/.hidden.tmp' failed.")!;
        var e = LoraException.From(inner, "/x/out")!;
        Assert.Equal(kind, e.Kind);
        Assert.Equal(id, e.ErrorId);
        Assert.StartsWith("/x/out: ", e.Message);
        Assert.DoesNotContain(".hidden.tmp", e.Message);
    }

    [Fact]
    public void BugsAndCancellationAreNotRewrapped()
    {
        Assert.Null(LoraException.From(new NullReferenceException(), "x"));
        Assert.Null(LoraException.From(new OperationCanceledException(), "x"));
    }

    [Fact]
    public void NonFiniteTensorsAreRefusedByNameAndPosition()
    {
        using var t = zeros(3, 4);
        t[1, 2] = tensor(float.PositiveInfinity);
        t[2, 0] = tensor(float.NaN);
        var e = Assert.Throws<LoraException>(() => FiniteCheck.Require(t, "/a/adapter_model.safetensors", "m.lora_A.weight"));
        Assert.Equal(FiniteCheck.ErrorId, e.ErrorId);
        Assert.Contains("tensor 'm.lora_A.weight' has 2 non-finite values (1 NaN, 1 infinite; the first, +Inf, at [1, 2])", e.Message);
        using var fine = ones(2, 2);
        FiniteCheck.Require(fine, "x", "y");
        using var integers = zeros(2, 2, ScalarType.Int32);
        FiniteCheck.Require(integers, "x", "y");
    }

    // Every stored float dtype, each non-finite kind, in the vectorised part and in the tail of the
    // scan, and the largest finite value (all exponent bits but one) passing.
    [Theory]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.Float64)]
    public void NonFiniteValuesAreFoundInEveryFloatDType(ScalarType dtype)
    {
        foreach (long at in new long[] { 0, 100, 1000 })
            foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
            {
                using var t = zeros(1001, dtype: dtype);
                t[at] = tensor(bad);
                var e = Assert.Throws<LoraException>(() => FiniteCheck.Require(t, "f", "m.lora_B.weight"));
                Assert.Contains($"at [{at}]", e.Message);
            }
        using var largest = full(1001, dtype == ScalarType.Float16 ? 65504.0 : -3.0e38, dtype: dtype);
        FiniteCheck.Require(largest, "f", "m.lora_B.weight");
    }

    [Theory]
    [InlineData("{\"lora_alpha\": \"16\"}", "lora_alpha")]
    [InlineData("{\"use_rslora\": \"true\"}", "use_rslora")]
    [InlineData("{\"r\": 8.5}", "r")]
    [InlineData("{\"r\": 3000000000}", "r")]
    [InlineData("{\"rank_pattern\": {\"q\": null}}", "rank_pattern.q")]
    public void ConfigFieldsOfTheWrongTypeAreErrorsNamingTheField(string json, string field)
    {
        var e = Assert.Throws<LoraException>(() => AdapterConfig.Parse(json, "/a/adapter_config.json"));
        Assert.Equal(AdapterConfig.ConfigFieldTypeId, e.ErrorId);
        Assert.Equal("/a/adapter_config.json", e.Target);
        Assert.Contains($"field '{field}'", e.Message);
    }

    [Fact]
    public void TemporaryNamesAreShortSoLongNamesCanBeWritten()
    {
        string parent = Directory.CreateTempSubdirectory("loralego-atomic").FullName;
        try
        {
            string target = Path.Combine(parent, new string('n', 250));
            AtomicFile.CreateDirectory(target, dir => File.WriteAllText(Path.Combine(dir, "f"), "x"));
            Assert.Equal("x", File.ReadAllText(Path.Combine(target, "f")));
            Assert.Single(Directory.EnumerateFileSystemEntries(parent));
        }
        finally
        {
            Directory.Delete(parent, recursive: true);
        }
    }

    [Fact]
    public void AFailedFillLeavesNothingAndNamesTheUsersPath()
    {
        string parent = Directory.CreateTempSubdirectory("loralego-atomic").FullName;
        try
        {
            string target = Path.Combine(parent, "out");
            var e = Assert.Throws<LoraException>(() => AtomicFile.CreateDirectory(target, dir =>
                throw new LoraException(LoraErrorKind.InvalidData, Path.Combine(dir, "adapter_model.safetensors"), "bad tensor")));
            Assert.Equal(Path.Combine(target, "adapter_model.safetensors"), e.Target);
            Assert.Empty(Directory.EnumerateFileSystemEntries(parent));
        }
        finally
        {
            Directory.Delete(parent, recursive: true);
        }
    }

    [Fact]
    public void AMergeHoldsNoHandleAfterwardsAndRefusesAFileRewrittenWhileItsHandleIsKept()
    {
        string folder = CopyOfAdapter("a");
        try
        {
            string file = Path.Combine(folder, PeftAdapterReader.ModelFileName);
            var adapter = PeftAdapterReader.Read(folder);
            var other = PeftAdapterReader.Read(Fixtures.Adapter("b"));
            StandardMerge.Merge([new MergeInput(adapter), new MergeInput(other)], MergeMethod.Linear);
            AssertNoHandleOn(file);
            var tensors = adapter.Modules.SelectMany(m => new[] { m.A, m.B }).ToList();
            using (SafetensorsFile.KeepOpen(tensors.Select(t => t.SourceFile!)))
            {
                tensors[0].Load().Dispose();
                // Rewritten in place, through the same inode the kept handle reads.
                using (var stream = new FileStream(file, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
                    stream.SetLength(stream.Length + 8);
                var e = Assert.Throws<LoraException>(() => tensors[1].Load());
                Assert.Equal("FileChanged", e.ErrorId);
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void ReadingATensorHoldsNoHandleAfterwards()
    {
        string folder = CopyOfAdapter("a");
        try
        {
            var adapter = PeftAdapterReader.Read(folder);
            adapter.Modules[0].A.Load().Dispose();
            AssertNoHandleOn(Path.Combine(folder, PeftAdapterReader.ModelFileName));
            File.Copy(Path.Combine(Fixtures.Adapter("c"), PeftAdapterReader.ModelFileName), Path.Combine(folder, PeftAdapterReader.ModelFileName), overwrite: true);
            File.SetLastWriteTimeUtc(Path.Combine(folder, PeftAdapterReader.ModelFileName), DateTime.UtcNow.AddMinutes(1));
            var e = Assert.Throws<LoraException>(() => adapter.Modules[0].A.Load());
            Assert.Equal("FileChanged", e.ErrorId);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static string CopyOfAdapter(string name)
    {
        string folder = Directory.CreateTempSubdirectory("loralego-handle").FullName;
        foreach (var f in Directory.EnumerateFiles(Fixtures.Adapter(name)))
            File.Copy(f, Path.Combine(folder, Path.GetFileName(f)));
        return folder;
    }

    // An exclusive open fails while any handle (or map) of this process is on the file.
    private static void AssertNoHandleOn(string file)
    {
        using (new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
        {
        }
    }
}
