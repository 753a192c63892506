namespace LoraLego.Core.Merging.Tuning;

/// <summary>
/// LoraHub's gradient-free stage (arXiv 2307.13269) as a seeded (1+1) evolution strategy: each proposal perturbs the
/// current weights, either all of them by Gaussian steps or all together by one log-normal overall scale (the direction
/// a plain Gaussian step finds slowly), clipped to [-MaxWeight, MaxWeight]; a proposal with a lower loss + L1 * sum |w|
/// replaces the current weights. The step widens after a success and narrows after a failure (about the 1/5 rule).
/// </summary>
internal sealed class WeightSearch
{
    private readonly Random _random;
    private readonly MergeSearchOptions _options;
    private double[] _current;
    private double _objective;
    private double _sigma;

    public WeightSearch(IReadOnlyList<double> start, double startLoss, MergeSearchOptions options)
    {
        _options = options;
        _random = new Random(options.Seed);
        _current = start.ToArray();
        _objective = Objective(_current, startLoss);
        _sigma = 0.5 * Math.Max(_current.Average(Math.Abs), 0.05);
    }

    public double[] Propose()
    {
        double[] next;
        if (_random.NextDouble() < 1.0 / 3)
        {
            double scale = Math.Exp(0.3 * Gaussian());
            next = _current.Select(w => w * scale).ToArray();
        }
        else
        {
            next = _current.Select(w => w + _sigma * Gaussian()).ToArray();
        }
        return next.Select(w => Math.Clamp(w, -_options.MaxWeight, _options.MaxWeight)).ToArray();
    }

    /// <summary>Takes the tuning loss of a proposal; true when it became the current weights.</summary>
    public bool Report(double[] proposal, double tuneLoss)
    {
        double objective = Objective(proposal, tuneLoss);
        if (objective < _objective)
        {
            (_current, _objective) = (proposal, objective);
            _sigma *= 1.3;
            return true;
        }
        _sigma *= 0.93;
        return false;
    }

    private double Objective(double[] weights, double loss) => loss + _options.L1 * weights.Sum(Math.Abs);

    // Box-Muller from the seeded generator, so the search is the same for the same seed on every platform.
    private double Gaussian() => Math.Sqrt(-2 * Math.Log(1 - _random.NextDouble())) * Math.Cos(2 * Math.PI * _random.NextDouble());
}
