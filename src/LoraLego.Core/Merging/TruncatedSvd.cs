using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>The end of every SVD merge: the best rank-k factors of an update, U*S as B and Vh as A, optionally clamped.</summary>
internal static class TruncatedSvd
{
    /// <summary>Factors of a dense (out x in) update, cut to min(rank, out, in).</summary>
    public static MergedFactors OfDense(Tensor delta, int rank, double? clamp)
    {
        using var scope = NewDisposeScope();
        // cuSOLVER's float32 SVD strays from LAPACK's by up to 6e-5 relative on the fixtures (measured on an H100),
        // beyond PEFT parity; float64 on CUDA is cheap there and keeps the CPU's results.
        var input = delta.device_type == TorchSharp.DeviceType.CUDA ? delta.to_type(ScalarType.Float64) : delta;
        var (u, s, vh) = linalg.svd(input, fullMatrices: false);
        long k = Math.Min(rank, s.shape[0]);
        var b = u[.., ..(int)k].mul(s[..(int)k]).to_type(delta.dtype);
        var a = vh[..(int)k, ..].to_type(delta.dtype);
        return Finish(a, b, clamp);
    }

    /// <summary>
    /// Applies PEFT's svd_clamp and hands the factors out of the caller's dispose scope. The bound is the clamp-quantile
    /// of all entries of U*S and Vh together (linear interpolation, as torch.quantile), and both factors are clamped to
    /// +-bound. That quantile depends on the SVD's arbitrary column signs, so a clamped result can differ from PEFT's
    /// on the same input; unclamped results agree exactly.
    /// </summary>
    internal static MergedFactors Finish(Tensor a, Tensor b, double? clamp)
    {
        if (clamp is { } q)
        {
            var bound = Quantile(cat([b.reshape(-1), a.reshape(-1)], 0), q);
            a = a.clamp(-bound, bound);
            b = b.clamp(-bound, bound);
        }
        return new MergedFactors(a.contiguous().MoveToOuterDisposeScope(), b.contiguous().MoveToOuterDisposeScope());
    }

    // torch.quantile refuses inputs over 2^24 entries; two order statistics give the same interpolated value at any size.
    private static double Quantile(Tensor values, double q)
    {
        long n = values.shape[0];
        double position = q * (n - 1);
        long below = (long)Math.Floor(position);
        long above = Math.Min(below + 1, n - 1);
        double low = values.kthvalue(below + 1, 0).values.item<float>();
        double high = values.kthvalue(above + 1, 0).values.item<float>();
        return low + (high - low) * (position - below);
    }
}
