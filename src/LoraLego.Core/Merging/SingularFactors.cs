using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// A thin SVD of an update, float64: Left (out x n, orthonormal columns), Values (n, descending) and Right
/// (n x in, orthonormal rows), so the update is Left diag(Values) Right.
/// </summary>
public readonly record struct SingularFactors(Tensor Left, Tensor Values, Tensor Right)
{
    /// <summary>The singular values, largest first.</summary>
    public double[] ToArray() => Values.to_type(ScalarType.Float64).cpu().data<double>().ToArray();

    /// <summary>The best rank-<paramref name="k"/> factors, U*S as B and Vh as A, in <paramref name="dtype"/>.</summary>
    public (Tensor A, Tensor B) Truncate(int k, ScalarType dtype) =>
        (Right[..k, ..].to(dtype), Left[.., ..k].mul(Values[..k]).to(dtype));
}
