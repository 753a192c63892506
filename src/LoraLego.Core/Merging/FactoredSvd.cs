using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// The truncated SVD of B @ A (B out x R, A R x in) without forming the out x in product: with B = Qb Rb and
/// A^T = Qa Ra, B @ A = Qb (Rb Ra^T) Qa^T, so the SVD of the small core Rb Ra^T, mapped back through Qb and Qa,
/// is the SVD of B @ A. Cost O((out + in) R^2) instead of O(out * in * min(out, in)).
/// </summary>
internal static class FactoredSvd
{
    /// <summary>
    /// Factors cut to min(rank, out, in), as the dense SVD gives. Where the stacked rank R is smaller, the extra
    /// columns are zero: the dense SVD would put only rounding noise there.
    /// </summary>
    public static MergedFactors Of(Tensor b, Tensor a, int rank, double? clamp)
    {
        using var scope = NewDisposeScope();
        var svd = Decompose(b, a);
        int k = (int)Math.Min(rank, svd.Values.shape[0]);
        var (right, left) = svd.Truncate(k, b.dtype);
        int full = (int)Math.Min(rank, Math.Min(b.shape[0], a.shape[1]));
        if (full > k)
        {
            left = nn.functional.pad(left, [0, full - k]);
            right = nn.functional.pad(right, [0, 0, 0, full - k]);
        }
        return TruncatedSvd.Finish(right, left, clamp);
    }

    /// <summary>The whole thin SVD of B @ A (R singular values, R the stacked rank), float64, in the caller's dispose scope.</summary>
    public static SingularFactors Decompose(Tensor b, Tensor a)
    {
        // The core's condition number is the update's; float64 keeps the small decompositions from adding error.
        var (qb, rb) = linalg.qr(b.to(ScalarType.Float64));
        var (qa, ra) = linalg.qr(a.to(ScalarType.Float64).t());
        var (u, s, vh) = linalg.svd(rb.matmul(ra.t()), fullMatrices: false);
        return new SingularFactors(qb.matmul(u), s, vh.matmul(qa.t()));
    }
}
