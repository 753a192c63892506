namespace LoraLego.Core.Surgery;

/// <summary>
/// The QR factorisation of a tall-skinny float64 matrix (rows ≥ width, column-major) by Householder reflections
/// (LAPACK's dgeqr2 order, one thread), with the signs fixed so that R's diagonal is non-negative: Q is then unique
/// where the matrix has full rank, and the bits depend only on the input (<see cref="OrderedDoubles"/>). The reflectors
/// are kept, so Q is applied to a small matrix in place of forming it and then multiplying.
/// </summary>
internal sealed class HouseholderQr
{
    private readonly double[] factored;
    private readonly double[] tau;
    private readonly double[] signs;

    /// <summary>Factors <paramref name="columns"/> (rows x width, column j at j * rows), overwriting it.</summary>
    public HouseholderQr(double[] columns, int rows, int width)
    {
        if (rows < width || columns.Length < checked(rows * width))
            throw new ArgumentException($"A {rows} x {width} matrix is not tall-skinny or not that size.", nameof(columns));
        (factored, Rows, Width) = (columns, rows, width);
        tau = new double[width];
        signs = new double[width];
        for (int k = 0; k < width; k++)
        {
            Reflect(k);
            var v = Tail(k);
            for (int j = k + 1; j < width; j++)
                Apply(k, v, Column(j));
        }
    }

    public int Rows { get; }

    public int Width { get; }

    /// <summary>R (width x width, row-major), its diagonal non-negative.</summary>
    public double[] R()
    {
        var r = new double[Width * Width];
        for (int j = 0; j < Width; j++)
            for (int i = 0; i <= j; i++)
                r[i * Width + j] = signs[i] * factored[j * Rows + i];
        return r;
    }

    /// <summary>
    /// Q S for a width x <paramref name="count"/> matrix S (column-major), written into <paramref name="result"/>
    /// (rows x count, column-major) and returned. With S the identity this is Q itself.
    /// </summary>
    public double[] Times(double[] small, int count, double[] result)
    {
        Array.Clear(result, 0, checked(Rows * count));
        var lastNonZero = new int[count];
        for (int c = 0; c < count; c++)
        {
            lastNonZero[c] = -1;
            for (int i = 0; i < Width; i++)
            {
                result[c * Rows + i] = signs[i] * small[c * Width + i];
                if (small[c * Width + i] != 0)
                    lastNonZero[c] = i;
            }
        }
        // A column of [S; 0] is zero below its last non-zero row, and H_k touches only rows k and below: the H_k past
        // that row would reflect zeros into the same zeros, so they are skipped (half the work for the identity).
        for (int k = Width - 1; k >= 0; k--)
        {
            var v = Tail(k);
            for (int c = 0; c < count; c++)
                if (k <= lastNonZero[c])
                    Apply(k, v, result.AsSpan(c * Rows, Rows));
        }
        return result;
    }

    /// <summary>Q's first width columns (rows x width, column-major), written into <paramref name="result"/> and returned.</summary>
    public double[] Basis(double[] result)
    {
        var identity = new double[Width * Width];
        for (int i = 0; i < Width; i++)
            identity[i * Width + i] = 1;
        return Times(identity, Width, result);
    }

    private Span<double> Column(int j) => factored.AsSpan(j * Rows, Rows);

    // Below the diagonal of column k: the reflector's vector, its leading 1 implicit.
    private ReadOnlySpan<double> Tail(int k) => Column(k)[(k + 1)..];

    // dlarfg: H = I - tau v vᵀ maps x = column k's entries from the diagonal down onto beta e1, |beta| = ||x||, with
    // beta's sign opposite to x's first entry so that v = x - beta e1 suffers no cancellation. The entries come from
    // float32 data (squares of float32 neither overflow nor underflow in float64), so no rescaling is needed.
    private void Reflect(int k)
    {
        var x = Column(k)[k..];
        double alpha = x[0];
        double tailSquares = OrderedDoubles.Dot(x[1..], x[1..]);
        if (tailSquares == 0)
        {
            tau[k] = 0;
            signs[k] = alpha < 0 ? -1 : 1;
            return;
        }
        double beta = -Math.CopySign(Math.Sqrt(alpha * alpha + tailSquares), alpha);
        tau[k] = (beta - alpha) / beta;
        double scale = 1 / (alpha - beta);
        var tail = x[1..];
        for (int i = 0; i < tail.Length; i++)
            tail[i] *= scale;
        x[0] = beta;
        signs[k] = beta < 0 ? -1 : 1;
    }

    // y <- H_k y on rows k and below.
    private void Apply(int k, ReadOnlySpan<double> v, Span<double> y)
    {
        if (tau[k] == 0)
            return;
        var below = y[(k + 1)..];
        double w = y[k] + OrderedDoubles.Dot(v, below);
        double scale = -tau[k] * w;
        y[k] += scale;
        OrderedDoubles.AddScaled(scale, v, below);
    }
}
