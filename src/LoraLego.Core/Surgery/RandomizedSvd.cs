using LoraLego.Core.Merging;
using static TorchSharp.torch;

namespace LoraLego.Core.Surgery;

/// <summary>
/// The leading singular triplets of a dense matrix by a randomized range finder (Halko, Martinsson and Tropp 2011,
/// algorithms 4.4 and 5.1): a Gaussian sketch, a few power iterations with re-orthonormalisation, then the SVD of
/// the small projected matrix. Built from matmul and QR because TorchSharp 0.107 has no svd_lowrank. Cost
/// O(out * in * (k + oversampling) * (2 q + 2)) against O(out * in * min(out, in)) for the dense SVD.
/// </summary>
public static class RandomizedSvd
{
    /// <summary>
    /// The first <paramref name="rank"/> + <paramref name="oversampling"/> singular triplets of <paramref name="matrix"/>
    /// (float32 or float64), float64, in the caller's dispose scope; the dense SVD where the sketch would not be smaller.
    /// </summary>
    public static SingularFactors Of(Tensor matrix, int rank, int oversampling, int powerIterations, Generator? generator)
    {
        long rows = matrix.shape[0], cols = matrix.shape[1];
        long sketch = Math.Min(rank + oversampling, Math.Min(rows, cols));
        if (2 * sketch >= Math.Min(rows, cols))
            return Dense(matrix);
        // TorchSharp's generators are CPU generators: the sketch is drawn there and moved, which also gives a seed
        // the same sketch on every device.
        var omega = generator is null
            ? randn([cols, sketch], dtype: matrix.dtype, device: matrix.device)
            : randn([cols, sketch], dtype: matrix.dtype, device: CPU, generator: generator).to(matrix.device);
        var q = Orthonormal(matrix.matmul(omega));
        for (int i = 0; i < powerIterations; i++)
        {
            // Re-orthonormalising after each product keeps the small singular values from drowning in rounding error.
            var z = Orthonormal(matrix.t().matmul(q));
            q = Orthonormal(matrix.matmul(z));
        }
        var projected = q.t().matmul(matrix).to(ScalarType.Float64);
        var (u, s, vh) = linalg.svd(projected, fullMatrices: false);
        return new SingularFactors(q.to(ScalarType.Float64).matmul(u), s, vh);
    }

    /// <summary>The full thin SVD, float64.</summary>
    public static SingularFactors Dense(Tensor matrix)
    {
        var (u, s, vh) = linalg.svd(matrix.to(ScalarType.Float64), fullMatrices: false);
        return new SingularFactors(u, s, vh);
    }

    private static Tensor Orthonormal(Tensor columns) => linalg.qr(columns).Q;
}
