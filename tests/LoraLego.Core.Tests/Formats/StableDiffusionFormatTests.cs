using System.Security.Cryptography;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using LoraLego.Core.Formats.StableDiffusion;
using LoraLego.Core.Merging;
using LoraLego.Core.Surgery;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Formats;

public sealed class StableDiffusionFormatTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loralego-sd-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Sd(string name) => Path.Combine(Fixtures.Root, "tests", "fixtures", "sd", name);

    private static byte[] RawBytes(SafetensorsFile file, string name)
    {
        using var t = file.ReadTensor(name);
        return t.bytes.ToArray();
    }

    [Theory]
    [InlineData("sd15-kohya.safetensors")]
    [InlineData("sdxl-kohya.safetensors")]
    public void Kohya_round_trip_is_byte_identical_in_tensors_and_keeps_the_metadata(string fixture)
    {
        var adapter = LoraReader.Read(Sd(fixture));
        Assert.Equal("Kohya", adapter.Format);
        string written = Path.Combine(_dir, fixture);
        LoraWriter.Write(adapter, written, LoraFormat.Kohya, null);
        using var original = SafetensorsFile.Open(Sd(fixture));
        using var copy = SafetensorsFile.Open(written);
        Assert.Equal(original.Entries.Select(e => e.Name).Order(), copy.Entries.Select(e => e.Name).Order());
        foreach (var e in original.Entries)
        {
            Assert.Equal(e.DType, copy[e.Name].DType);
            Assert.Equal(e.Shape, copy[e.Name].Shape);
            Assert.Equal(RawBytes(original, e.Name), RawBytes(copy, e.Name));
        }
        // Same tensors in the same order: the same data section, so even sshs_model_hash is unchanged.
        Assert.Equal(original.Metadata.OrderBy(p => p.Key), copy.Metadata.OrderBy(p => p.Key));
    }

    [Fact]
    public void Sshs_model_hash_is_the_sha256_of_the_bytes_after_the_header()
    {
        var merged = LegoMerge.Merge([new MergeInput(LoraReader.Read(Sd("sd15-kohya.safetensors"))), new MergeInput(LoraReader.Read(Sd("sd15-kohya-b.safetensors")))]);
        string written = Path.Combine(_dir, "merged.safetensors");
        LoraWriter.Write(merged, written, LoraFormat.Kohya, null);
        var bytes = File.ReadAllBytes(written);
        long dataStart = 8 + (long)BitConverter.ToUInt64(bytes, 0);
        using var file = SafetensorsFile.Open(written);
        Assert.Equal(Convert.ToHexString(SHA256.HashData(bytes.AsSpan((int)dataStart))).ToLowerInvariant(), file.Metadata["sshs_model_hash"]);
        Assert.Equal(merged.Rank.ToString(), file.Metadata["ss_network_dim"]);
        Assert.Equal("merged", file.Metadata["ss_output_name"]);
        Assert.Equal("sd_v1", file.Metadata["ss_base_model_version"]);
    }

    [Theory]
    [InlineData("sd15-kohya.safetensors")]
    [InlineData("sdxl-kohya.safetensors")]
    public void Kohya_to_diffusers_to_kohya_gives_the_same_tensors_and_alphas(string fixture)
    {
        var kohya = LoraReader.Read(Sd(fixture));
        string diffusers = Path.Combine(_dir, "diffusers", DiffusersLoraReader.FileName);
        LoraWriter.Write(kohya, diffusers, LoraFormat.Diffusers, null);
        var viaDiffusers = LoraReader.Read(Path.GetDirectoryName(diffusers)!);
        Assert.Equal("Diffusers", viaDiffusers.Format);
        string back = Path.Combine(_dir, "back.safetensors");
        LoraWriter.Write(viaDiffusers, back, LoraFormat.Kohya, null);
        using var original = SafetensorsFile.Open(Sd(fixture));
        using var copy = SafetensorsFile.Open(back);
        // diffusers stores no alpha tensors: modules that had none come back with alpha = rank stated.
        var factors = original.Entries.Where(e => !e.Name.EndsWith(".alpha")).ToList();
        foreach (var e in factors)
            Assert.Equal(RawBytes(original, e.Name), RawBytes(copy, e.Name));
        foreach (var e in copy.Entries.Where(e => e.Name.EndsWith(".alpha")))
        {
            string module = e.Name[..^".alpha".Length];
            double expected = original.Contains(e.Name) ? Scalar(original, e.Name) : original[module + ".lora_down.weight"].Shape[0];
            Assert.Equal(expected, Scalar(copy, e.Name), 12);
        }
        Assert.Equal(factors.Count, copy.Entries.Count(e => !e.Name.EndsWith(".alpha")));
    }

    private static double Scalar(SafetensorsFile file, string name)
    {
        using var t = file.ReadTensor(name);
        return t.to_type(ScalarType.Float64).item<double>();
    }

    [Fact]
    public void Sdxl_kohya_file_and_its_diffusers_conversion_have_the_same_module_keys_and_updates()
    {
        var kohya = LoraReader.Read(Sd("sdxl-kohya.safetensors"));
        var diffusers = LoraReader.Read(Sd("sdxl-diffusers"));
        Assert.Equal(kohya.Modules.Select(m => m.Key).Order(), diffusers.Modules.Select(m => m.Key).Order());
        Assert.Equal(SdArchitecture.Sdxl.BaseModel, diffusers.BaseModel);
        AssertSameUpdates(kohya, diffusers);
    }

    [Theory]
    [InlineData("sd15-kohya.safetensors", LoraFormat.Peft)]
    [InlineData("sd15-kohya.safetensors", LoraFormat.Diffusers)]
    [InlineData("sdxl-kohya.safetensors", LoraFormat.Peft)]
    [InlineData("sdxl-kohya.safetensors", LoraFormat.Diffusers)]
    public void Every_module_has_the_same_update_in_every_format(string fixture, LoraFormat format)
    {
        var kohya = LoraReader.Read(Sd(fixture));
        string destination = LoraWriter.Destination(Path.Combine(_dir, "out"), format, kohya.Name);
        LoraWriter.Write(kohya, destination, format, null);
        var other = LoraReader.Read(destination);
        Assert.Equal(format, LoraFormats.Parse(other.Format));
        AssertSameUpdates(kohya, other);
        Assert.All(other.Modules, m => Assert.Equal(kohya.GetModule(m.Key)!.Kernel, m.Kernel));
    }

    private static void AssertSameUpdates(LoraAdapter expected, LoraAdapter actual)
    {
        foreach (var m in expected.Modules)
        {
            using var want = m.Delta();
            using var got = actual.GetModule(m.Key)!.Delta();
            double err = (want - got).abs().max().item<float>();
            Assert.True(err < 1e-6, $"{m.Key}: max abs difference {err}");
        }
    }

    [Fact]
    public void Conv_factors_are_flattened_so_the_update_is_the_convolution_weights()
    {
        var adapter = LoraReader.Read(Sd("sd15-kohya.safetensors"));
        var conv = adapter.GetModule("unet.down_blocks.0.resnets.0.conv1")!;
        Assert.Equal(new ConvKernel(3, 3), conv.Kernel);
        Assert.Equal(320 * 9, conv.InFeatures);
        using var delta = conv.Delta();
        Assert.True(MaxDiff(delta.reshape(320, 320, 3, 3), DenseConvUpdate(Sd("sd15-kohya.safetensors"), "lora_unet_down_blocks_0_resnets_0_conv1")) < 1e-6);
    }

    // The convolution's weight update from the file's 4-D factors: sum over r of up[o, r] down[r, i, h, w], times alpha / r.
    private static Tensor DenseConvUpdate(string path, string kohyaName, double weight = 1)
    {
        using var file = SafetensorsFile.Open(path);
        using var down = file.ReadTensor(kohyaName + ".lora_down.weight").to_type(ScalarType.Float32);
        using var up = file.ReadTensor(kohyaName + ".lora_up.weight").to_type(ScalarType.Float32);
        double alpha = file.Contains(kohyaName + ".alpha") ? Scalar(file, kohyaName + ".alpha") : down.shape[0];
        return einsum("or,rihw->oihw", up.squeeze(-1).squeeze(-1), down).mul_(alpha / down.shape[0] * weight);
    }

    private static double MaxDiff(Tensor x, Tensor y)
    {
        using var d = (x - y).abs().max();
        return d.item<float>();
    }

    [Theory]
    [InlineData("Linear")]
    [InlineData("Svd")]
    [InlineData("Lego")]
    public void Conv_modules_merge_to_the_dense_reference(string method)
    {
        string a = Sd("sd15-kohya.safetensors"), b = Sd("sd15-kohya-b.safetensors");
        const string key = "unet.mid_block.resnets.1.conv2", kohyaName = "lora_unet_mid_block_resnets_1_conv2";
        // Linear needs equal ranks: adapter a with itself at weights 1/4 each is a again (PEFT's linear sums sqrt(w) A and sqrt(w) B).
        var (inputs, reference) = method switch
        {
            "Linear" => (new[] { new MergeInput(LoraReader.Read(a), 0.25), new MergeInput(LoraReader.Read(a, "a2"), 0.25) }, DenseConvUpdate(a, kohyaName)),
            "Svd" => (new[] { new MergeInput(LoraReader.Read(a)), new MergeInput(LoraReader.Read(b)) }, DenseConvUpdate(a, kohyaName) + DenseConvUpdate(b, kohyaName)),
            _ => (new[] { new MergeInput(LoraReader.Read(a)), new MergeInput(LoraReader.Read(b)) }, (DenseConvUpdate(a, kohyaName) + DenseConvUpdate(b, kohyaName)) / 2),
        };
        var merged = method == "Lego"
            ? LegoMerge.Merge(inputs)
            : StandardMerge.Merge(inputs, Enum.Parse<MergeMethod>(method), new MergeOptions { Rank = method == "Svd" ? 6 : null, Device = Compute.ComputeDevice.Cpu });
        var module = merged.GetModule(key)!;
        Assert.Equal(new ConvKernel(3, 3), module.Kernel);
        using var delta = module.Delta();
        Assert.True(MaxDiff(delta.reshape(1280, 1280, 3, 3), reference) < 1e-5, $"{method}: {MaxDiff(delta.reshape(1280, 1280, 3, 3), reference)}");
        string written = Path.Combine(_dir, method + ".safetensors");
        LoraWriter.Write(merged, written, LoraFormat.Kohya, null);
        using var back = DenseConvUpdate(written, kohyaName);
        Assert.True(MaxDiff(back, reference) < 1e-5);
    }

    [Fact]
    public void Modules_whose_kernels_disagree_do_not_merge()
    {
        var conv = LoraReader.Read(Sd("sd15-kohya.safetensors")).WithModules(k => k == "unet.down_blocks.0.attentions.0.proj_in");
        var module = conv.Modules[0];
        var linear = new LoraAdapter("linear", null, "PEFT", conv.Config, [new LoraModule(module.Key, module.Rank, module.Alpha, false, module.A, module.B)]);
        foreach (var merge in new Func<LoraAdapter>[]
        {
            () => StandardMerge.Merge([new MergeInput(conv), new MergeInput(linear)], MergeMethod.Svd, new MergeOptions { Rank = 4 }),
            () => LegoMerge.Merge([new MergeInput(conv), new MergeInput(linear)]),
        })
        {
            var e = Assert.Throws<LoraException>(merge);
            Assert.Equal(LoraErrorKind.ShapeMismatch, e.Kind);
            Assert.Contains("kernel", e.Message);
        }
    }

    [Theory]
    [InlineData("tucker.safetensors", "Tucker")]
    [InlineData("loha.safetensors", "LoHa")]
    [InlineData("lokr.safetensors", "LoKr")]
    [InlineData("dora.safetensors", "DoRA")]
    public void Unsupported_kinds_are_refused_naming_the_module(string fixture, string kind)
    {
        var e = Assert.Throws<LoraException>(() => LoraReader.Read(Sd(Path.Combine("unsupported", fixture))));
        Assert.Equal(LoraErrorKind.Unsupported, e.Kind);
        Assert.Equal("UnsupportedLoraKind", e.ErrorId);
        Assert.Contains(kind, e.Message);
        Assert.Contains("lora_unet_down_blocks_0_", e.Message);
    }

    [Fact]
    public void Module_tables_have_the_layers_of_each_unet_and_text_encoder()
    {
        // Transformer blocks: SD1.5 has 16 (one per attention), SDXL 70 (2x2 + 2x10 down, 10 mid, 3x10 + 3x2 up).
        Assert.Equal(16, SdArchitecture.Sd15.Modules.Count(m => m.Key.EndsWith(".attn1.to_q")));
        Assert.Equal(70, SdArchitecture.Sdxl.Modules.Count(m => m.Key.StartsWith("unet.") && m.Key.EndsWith(".attn1.to_q")));
        Assert.Equal(12 * 6, SdArchitecture.Sd15.Modules.Count(m => m.Key.StartsWith("text_encoder.")));
        Assert.Equal(32 * 6, SdArchitecture.Sdxl.Modules.Count(m => m.Key.StartsWith("text_encoder_2.")));
        // The names kohya files use for SDXL, with diffusers' shapes (up_blocks.1.resnets.0 reads 1280 + 640 channels).
        var skip = SdArchitecture.Sdxl.ByKohyaName("lora_unet_output_blocks_3_0_skip_connection")!;
        Assert.Equal(("unet.up_blocks.1.resnets.0.conv_shortcut", 1920L, 640L, new ConvKernel(1, 1)), (skip.Key, skip.InFeatures, skip.OutFeatures, skip.Kernel!));
        Assert.Equal("unet.up_blocks.0.upsamplers.0.conv", SdArchitecture.Sdxl.ByKohyaName("lora_unet_output_blocks_2_2_conv")!.Key);
        Assert.Equal("unet.up_blocks.0.upsamplers.0.conv", SdArchitecture.Sd15.ByKohyaName("lora_unet_up_blocks_0_upsamplers_0_conv")!.Key);
        Assert.Equal(2048, SdArchitecture.Sdxl.ByKey("unet.mid_block.attentions.0.transformer_blocks.9.attn2.to_k")!.InFeatures);
        Assert.Null(SdArchitecture.Sd15.ByKohyaName("lora_unet_input_blocks_4_1_proj_in"));
    }

    [Fact]
    public void A_merge_exports_in_its_inputs_format_when_they_agree()
    {
        var kohya = LoraReader.Read(Sd("sdxl-kohya.safetensors"));
        var diffusers = LoraReader.Read(Sd("sdxl-diffusers"));
        Assert.Equal(LoraFormat.Kohya, LoraFormats.DefaultFor(LegoMerge.Merge([new MergeInput(kohya), new MergeInput(LoraReader.Read(Sd("sdxl-kohya.safetensors"), "k2"))])));
        Assert.Equal(LoraFormat.Peft, LoraFormats.DefaultFor(LegoMerge.Merge([new MergeInput(kohya), new MergeInput(diffusers)])));
    }

    [Fact]
    public void A_resized_kohya_lora_exports_as_kohya_with_its_ranks()
    {
        var resized = LoraResizer.Resize(LoraReader.Read(Sd("sd15-kohya.safetensors")), RankRule.Fixed(1));
        Assert.Equal(LoraFormat.Kohya, LoraFormats.DefaultFor(resized));
        string written = Path.Combine(_dir, "resized.safetensors");
        LoraWriter.Write(resized, written, LoraFormat.Kohya, null);
        var back = LoraReader.Read(written);
        Assert.All(back.Modules, m => Assert.Equal(1, m.Rank));
        Assert.Equal(new ConvKernel(3, 3), back.GetModule("unet.mid_block.resnets.1.conv2")!.Kernel);
        AssertSameUpdates(resized, back);
    }

    [Fact]
    public void An_llm_adapter_has_no_kohya_name()
    {
        var peft = PeftAdapterReader.Read(Fixtures.Adapter("a"));
        var e = Assert.Throws<LoraException>(() => LoraWriter.Validate(peft, LoraFormat.Kohya, _dir));
        Assert.Equal("NoKohyaName", e.ErrorId);
        Assert.Contains("model.layers.", e.Message);
    }
}
