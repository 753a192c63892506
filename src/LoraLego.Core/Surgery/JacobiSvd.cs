namespace LoraLego.Core.Surgery;

/// <summary>
/// The SVD of a small square float64 matrix M = U diag(Values) Vᵀ by one-sided Jacobi rotations (Hestenes; Demmel and
/// Veselić 1992): column pairs of M V are rotated until every pair is orthogonal to working precision, then the column
/// norms are the singular values, accurate to a few roundings relative to each (not only to the largest). Sweeps run
/// the pairs in one fixed order on one thread, so the bits depend only on the input. Canonical form: values
/// descending (ties in column order), each column of U with its largest entry (the first of equals) positive; a column
/// of U whose value is 0 is 0.
/// </summary>
internal sealed class JacobiSvd
{
    // Far more than the 6-10 sweeps a 32 x 32 matrix takes; a bound so that rounding can never cycle forever.
    private const int MaxSweeps = 64;

    /// <summary>Decomposes the <paramref name="size"/> x <paramref name="size"/> row-major <paramref name="matrix"/>.</summary>
    public JacobiSvd(double[] matrix, int size)
    {
        var columns = new double[size * size];
        var rotations = new double[size * size];
        for (int i = 0; i < size; i++)
        {
            rotations[i * size + i] = 1;
            for (int j = 0; j < size; j++)
                columns[j * size + i] = matrix[i * size + j];
        }
        Orthogonalise(columns, rotations, size);
        var norms = new double[size];
        for (int j = 0; j < size; j++)
            norms[j] = Math.Sqrt(OrderedDoubles.Dot(Column(columns, size, j), Column(columns, size, j)));
        var order = Enumerable.Range(0, size).OrderByDescending(j => norms[j]).ToArray();
        (Size, Values, U, V) = (size, new double[size], new double[size * size], new double[size * size]);
        for (int c = 0; c < size; c++)
        {
            int j = order[c];
            Values[c] = norms[j];
            var u = Column(columns, size, j);
            double sign = LargestIsNegative(u) ? -1 : 1;
            double scale = norms[j] > 0 ? sign / norms[j] : 0;
            for (int i = 0; i < size; i++)
            {
                U[c * size + i] = u[i] * scale;
                V[c * size + i] = rotations[j * size + i] * sign;
            }
        }
    }

    public int Size { get; }

    /// <summary>The singular values, largest first.</summary>
    public double[] Values { get; }

    /// <summary>The left singular vectors, column-major (column c belongs to Values[c]).</summary>
    public double[] U { get; }

    /// <summary>The right singular vectors, column-major (column c belongs to Values[c]).</summary>
    public double[] V { get; }

    private static Span<double> Column(double[] columns, int size, int j) => columns.AsSpan(j * size, size);

    private static void Orthogonalise(double[] columns, double[] rotations, int size)
    {
        double tolerance = size * Math.ScaleB(1, -53);
        for (int sweep = 0; sweep < MaxSweeps; sweep++)
        {
            bool rotated = false;
            for (int p = 0; p < size - 1; p++)
                for (int q = p + 1; q < size; q++)
                {
                    Span<double> gp = Column(columns, size, p), gq = Column(columns, size, q);
                    double alpha = OrderedDoubles.Dot(gp, gp), beta = OrderedDoubles.Dot(gq, gq), gamma = OrderedDoubles.Dot(gp, gq);
                    if (!(Math.Abs(gamma) > tolerance * Math.Sqrt(alpha) * Math.Sqrt(beta)))
                        continue;
                    // The rotation of the smaller angle that makes the pair orthogonal.
                    double zeta = (beta - alpha) / (2 * gamma);
                    double t = Math.CopySign(1, zeta) / (Math.Abs(zeta) + Math.Sqrt(1 + zeta * zeta));
                    double c = 1 / Math.Sqrt(1 + t * t), s = c * t;
                    Rotate(gp, gq, c, s);
                    Rotate(Column(rotations, size, p), Column(rotations, size, q), c, s);
                    rotated = true;
                }
            if (!rotated)
                return;
        }
    }

    private static void Rotate(Span<double> x, Span<double> y, double c, double s)
    {
        for (int i = 0; i < x.Length; i++)
            (x[i], y[i]) = (c * x[i] - s * y[i], s * x[i] + c * y[i]);
    }

    private static bool LargestIsNegative(ReadOnlySpan<double> column)
    {
        int largest = 0;
        for (int i = 1; i < column.Length; i++)
            if (Math.Abs(column[i]) > Math.Abs(column[largest]))
                largest = i;
        return column[largest] < 0;
    }
}
