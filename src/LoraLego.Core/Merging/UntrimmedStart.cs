using LoraLego.Core.Clustering;
using System.Runtime.InteropServices;
using LoraLego.Core.Formats;
using LoraLego.Core.Surgery;
using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// Where the range finder of a trimmed combination starts: the leading right singular directions of the untrimmed
/// weighted sum U = Σ wᵢ sᵢ Bᵢ Aᵢ of the module's updates. Trimming, DARE's drops and sign election perturb U, but
/// magnitude trimming keeps its large entries and the drops are unbiased, so the combination's leading directions lie
/// close to U's; a Gaussian sketch has to find them with passes over the whole out x in combination instead.
/// </summary>
/// <remarks>
/// U's row space is spanned by the stacked A's rows, so the power iterations on UᵀU run in those rows' coefficients:
/// with L = A Aᵀ and K = B_wᵀ B_w (R x R, R the summed ranks, B_w the B's columns times wᵢ sᵢ), UᵀU Aᵀ c = Aᵀ K L c.
/// A step is two R x R products, where a pass over the combination costs out x in x 64 multiply-adds; only K and L
/// read the factors. Every sum is float64 in a fixed order (<see cref="SymmetricGram"/>, <see cref="OrderedDoubles"/>),
/// so the start's bits do not depend on the thread count.
/// </remarks>
internal static class UntrimmedStart
{
    /// <summary>Power iterations in the coefficients: each costs about nothing, and the start's error kept falling up to 10 (docs/benchmarks.md).</summary>
    internal const int Steps = 10;

    /// <summary>
    /// Up to <paramref name="columns"/> orthonormal directions (in x count, column-major, count = min(columns, R)), or
    /// null where U is (nearly) zero: its adapters cancel, or have no weight, and the combination's directions are then
    /// not U's. The basis is one of <paramref name="workspace"/>'s kept arrays, valid until its next start.
    /// </summary>
    public static (double[] Basis, int Count)? Of(ModuleInputs inputs, int columns, Generator generator, int threads, CombinationWorkspace workspace)
    {
        var members = inputs.Members;
        int rank = members.Sum(m => (int)m.Rank);
        int outFeatures = checked((int)members[0].OutFeatures), inFeatures = checked((int)members[0].InFeatures);
        int count = Math.Min(columns, rank);
        if (count == 0)
            return null;
        var aRows = workspace.Kept.Get<double>("start.a", rank * inFeatures);
        var bRows = workspace.Kept.Get<double>("start.b", rank * outFeatures);
        int row = 0;
        foreach (var member in members)
        {
            int r = (int)member.Rank;
            // Read in place from the factors' own memory (float32; copied to the CPU first where they are on CUDA):
            // managed copies were a few MB of garbage a module.
            using var contiguousA = TensorBytes.ContiguousOnCpu(member.A);
            using var contiguousB = TensorBytes.ContiguousOnCpu(member.B);
            var a = MemoryMarshal.Cast<byte, float>(contiguousA.bytes);
            var b = MemoryMarshal.Cast<byte, float>(contiguousB.bytes);
            double scale = member.Weight * member.Scaling;
            for (int i = 0; i < a.Length; i++)
                aRows[row * inFeatures + i] = a[i];
            for (int k = 0; k < r; k++)
                for (int i = 0; i < outFeatures; i++)
                    bRows[(row + k) * outFeatures + i] = scale * b[i * r + k];
            row += r;
        }
        var gramA = SymmetricGram.Of(aRows, rank, inFeatures, 0, inFeatures, threads);
        var gramB = SymmetricGram.Of(bRows, rank, outFeatures, 0, outFeatures, threads);
        if (Cancelled(gramA, gramB, members.Select(m => (int)m.Rank).ToArray()))
            return null;
        using (var draw = randn([count, rank], ScalarType.Float64, generator: generator))
        {
            var coefficients = TensorBytes.ToArray<double>(draw);
            var (product, stepped) = (new double[rank * count], new double[rank * count]);
            for (int step = 0; step < Steps; step++)
            {
                Times(gramA, coefficients, product, rank, count);
                Times(gramB, product, stepped, rank, count);
                // Orthonormal again after every step, so that float64 keeps the directions past the first.
                new HouseholderQr(stepped, rank, count).Basis(coefficients);
            }
            var directions = workspace.Kept.Get<double>("start.directions", inFeatures * count);
            Array.Clear(directions, 0, inFeatures * count);
            for (int j = 0; j < count; j++)
                for (int r = 0; r < rank; r++)
                    OrderedDoubles.AddScaled(coefficients[j * rank + r], aRows.AsSpan(r * inFeatures, inFeatures), directions.AsSpan(j * inFeatures, inFeatures));
            return (new HouseholderQr(directions, inFeatures, count).Basis(workspace.Kept.Get<double>("start.basis", inFeatures * count)), count);
        }
    }

    /// <summary>||U||² = trace(K L) below a millionth of Σ ||Uᵢ||², each adapter's share (trace of its diagonal blocks).</summary>
    private const double CancelledFraction = 1e-6;

    private static bool Cancelled(double[] gramA, double[] gramB, int[] ranks)
    {
        int rank = ranks.Sum();
        double whole = OrderedDoubles.Dot(gramB, gramA), parts = 0;
        int first = 0;
        foreach (int r in ranks)
        {
            for (int i = first; i < first + r; i++)
                parts += OrderedDoubles.Dot(gramB.AsSpan(i * rank + first, r), gramA.AsSpan(i * rank + first, r));
            first += r;
        }
        return !(whole > CancelledFraction * parts);
    }

    // result = m x (m symmetric, n x n row-major; x and result n x count column-major).
    private static void Times(double[] m, double[] x, double[] result, int n, int count)
    {
        for (int j = 0; j < count; j++)
            for (int i = 0; i < n; i++)
                result[j * n + i] = OrderedDoubles.Dot(m.AsSpan(i * n, n), x.AsSpan(j * n, n));
    }
}
