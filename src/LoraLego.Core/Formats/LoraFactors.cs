using LoraLego.Core.Adapters;

namespace LoraLego.Core.Formats;

/// <summary>
/// A module's two factors as files store them, linear ([r, in] and [out, r]) or convolution (LoCon:
/// [r, in, kh, kw] and [out, r, 1, 1]), read into a <see cref="LoraModule"/> with flattened factors and
/// written back in the file's shapes: the one place that knows both layouts, for every format.
/// </summary>
public static class LoraFactors
{
    /// <summary>The module of a down (A) and up (B) tensor; a convolution's are flattened and its kernel kept.</summary>
    /// <param name="rank">The rank the format's config gives the module, checked against the tensors; null takes the tensors'.</param>
    /// <exception cref="LoraException">Shapes that are neither layout, naming the file and the module.</exception>
    public static LoraModule Read(SafetensorsFile file, string key, SafetensorsEntry down, SafetensorsEntry up, int? rank, double? alpha, bool useRsLora = false,
        bool fanInFanOut = false, SafetensorsDType? alphaDType = null)
    {
        foreach (var entry in new[] { down, up })
            if (!entry.DType.IsFloating())
                throw new LoraException(LoraErrorKind.Unsupported, file.Path, $"tensor '{entry.Name}' has dtype {entry.DType}; LoRA factors must be floating point");
        ConvKernel? kernel = null;
        long[] downShape = down.Shape, upShape = up.Shape;
        if (down.Shape.Length == 4 || up.Shape.Length == 4)
        {
            if (down.Shape.Length != 4 || up.Shape.Length != 4)
                throw new LoraException(LoraErrorKind.ShapeMismatch, file.Path, $"module '{key}': down {Shape(down)} and up {Shape(up)} must both be 2-D (linear) or both 4-D (convolution)");
            if (up.Shape[2] != 1 || up.Shape[3] != 1)
                throw new LoraException(LoraErrorKind.Unsupported, file.Path, $"module '{key}': up factor {Shape(up)} has a {up.Shape[2]}x{up.Shape[3]} kernel; only a 1x1 up factor (LoCon) is supported");
            kernel = new ConvKernel(down.Shape[2], down.Shape[3]);
            downShape = [down.Shape[0], down.Shape[1] * kernel.Size];
            upShape = [up.Shape[0], up.Shape[1]];
        }
        try
        {
            int r = rank ?? (int)downShape[0];
            return new LoraModule(key, r, alpha ?? r, useRsLora,
                LoraTensor.FromFile(file, down, downShape), LoraTensor.FromFile(file, up, upShape), fanInFanOut)
            { Kernel = kernel, AlphaDType = alphaDType };
        }
        catch (LoraException e)
        {
            throw new LoraException(e.Kind, file.Path, $"module '{key}': {e.Detail}", e);
        }
    }

    /// <summary>The module's factors as write items in the file's shapes (4-D for a convolution).</summary>
    /// <param name="dtype">The element type to write; null keeps each factor's own.</param>
    public static IEnumerable<SafetensorsWriteItem> Items(LoraModule module, string downName, string upName, SafetensorsDType? dtype)
    {
        var downShape = module.Kernel?.DownShape(module.Rank, module.InFeatures) ?? module.A.Shape;
        var upShape = module.Kernel is null ? module.B.Shape : ConvKernel.UpShape(module.OutFeatures, module.Rank);
        yield return new SafetensorsWriteItem(downName, dtype ?? module.A.DType, downShape, () => Shaped(module.A, downShape));
        yield return new SafetensorsWriteItem(upName, dtype ?? module.B.DType, upShape, () => Shaped(module.B, upShape));
    }

    private static TorchSharp.torch.Tensor Shaped(LoraTensor factor, long[] shape)
    {
        var loaded = factor.LoadShared();
        if (loaded.shape.SequenceEqual(shape))
            return loaded;
        using (loaded)
            return loaded.reshape(shape);
    }

    private static string Shape(SafetensorsEntry e) => $"[{string.Join(", ", e.Shape)}]";
}
