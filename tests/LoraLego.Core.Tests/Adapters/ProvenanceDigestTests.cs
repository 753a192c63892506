using System.Security.Cryptography;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;

namespace LoraLego.Core.Tests.Adapters;

/// <summary>The inputs' digests, hashed while the merge runs, are the SHA-256 of the files as they are when the record is made.</summary>
public class ProvenanceDigestTests
{
    private static string Sha256(string file) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(file))).ToLowerInvariant();

    [Fact]
    public void A_merge_records_each_input_files_sha256()
    {
        var inputs = new[] { "a", "b" }.Select(n => new MergeInput(PeftAdapterReader.Read(Fixtures.Adapter(n)))).ToList();
        var merged = StandardMerge.Merge(inputs, MergeMethod.Linear);
        var recorded = merged.Provenance!["inputs"]!.AsArray().Select(i => (string)i!["sha256"]!).ToList();
        Assert.Equal(new[] { "a", "b" }.Select(n => Sha256(Path.Combine(Fixtures.Adapter(n), PeftAdapterReader.ModelFileName))), recorded);
    }

    [Fact]
    public void A_file_rewritten_between_merges_is_hashed_again_and_its_old_adapter_refused()
    {
        string folder = Path.Combine(Path.GetTempPath(), "loralego-digest-" + Guid.NewGuid().ToString("N"));
        CopyAdapter(Fixtures.Adapter("a"), folder, 1);
        try
        {
            var before = PeftAdapterReader.Read(folder);
            var first = Provenance.Input(before, 1.0);
            CopyAdapter(Fixtures.Adapter("b"), folder, 2);
            var after = PeftAdapterReader.Read(folder);
            var second = Provenance.Input(after, 1.0);
            string file = Path.Combine(folder, PeftAdapterReader.ModelFileName);
            Assert.NotEqual((string)first["sha256"]!, (string)second["sha256"]!);
            Assert.Equal(Sha256(file), (string)second["sha256"]!);
            var e = Assert.Throws<LoraException>(() => StandardMerge.Merge([new MergeInput(before)], MergeMethod.Linear));
            Assert.Equal("FileChanged", e.ErrorId);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static void CopyAdapter(string from, string to, int minutesAhead)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from))
            File.Copy(f, Path.Combine(to, Path.GetFileName(f)), overwrite: true);
        // Each copy a write time of its own, as a later save gives it, even where the clock's resolution is coarse.
        File.SetLastWriteTimeUtc(Path.Combine(to, PeftAdapterReader.ModelFileName), DateTime.UtcNow.AddMinutes(minutesAhead));
    }
}
