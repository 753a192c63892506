using System.Text.Json.Nodes;
using LoraLego.Core.Adapters;
using LoraLego.Core.Models;

namespace LoraLego.Core.Merging.Tuning;

/// <summary>
/// Searches for the merge of some adapters that scores best on data through a base model, in stages: the starting
/// points (each method's plain form, the default merge among them), the method's settings one at a time, the
/// per-adapter weights (<see cref="WeightSearch"/>, LoraHub), then per-module scales learned by gradient
/// (<see cref="ModuleScaleTrainer"/>, AdaMerging). The settings and weights are fitted on the tuning rows; the result is
/// chosen on held-out validation rows (<see cref="TuningSplit"/>) among the candidates no worse than the best starting
/// point on either row set, so it is never worse than that start on all the data. Deterministic for a seed on the CPU.
/// </summary>
public static class MergeSearch
{
    /// <summary>Searches on the rows of JSONL files (as <see cref="PerplexityEvaluator"/> reads them), concatenated in order: one file per task is the usual shape.</summary>
    /// <param name="model">The base model, with nothing attached; candidates are attached unmerged, one at a time.</param>
    /// <param name="adapters">Two or more adapters of that model.</param>
    /// <param name="jsonlPaths">One or more files; an error names the file and line of a bad row.</param>
    /// <param name="options">The methods, budget, seed and stages; defaults when null.</param>
    /// <param name="verbose">One line per candidate.</param>
    /// <param name="progress">Called after each evaluation.</param>
    /// <param name="trainingProgress">Called after each step of the gradient stage.</param>
    /// <param name="cancellationToken">Checked between and within evaluations; cancelling returns the best so far with <see cref="MergeSearchResult.Cancelled"/> set.</param>
    public static MergeSearchResult Run(BaseModel model, IReadOnlyList<LoraAdapter> adapters, IReadOnlyList<string> jsonlPaths, MergeSearchOptions? options = null,
        Action<string>? verbose = null, Action<MergeSearchStep>? progress = null, Action<ModuleScaleProgress>? trainingProgress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(jsonlPaths);
        if (jsonlPaths.Count == 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, null, "no data file to tune on");
        var rows = jsonlPaths.SelectMany(path => new JsonlTokenReader(path, model).ReadRows()).ToList();
        return Run(model, adapters, rows, options, verbose, progress, trainingProgress, cancellationToken);
    }

    /// <param name="model">The base model, with nothing attached; candidates are attached unmerged, one at a time.</param>
    /// <param name="adapters">Two or more adapters of that model.</param>
    /// <param name="rows">The tuning data (labelled rows score their answers only).</param>
    /// <param name="options">The methods, budget, seed and stages; defaults when null.</param>
    /// <param name="verbose">One line per candidate.</param>
    /// <param name="progress">Called after each evaluation.</param>
    /// <param name="trainingProgress">Called after each step of the gradient stage.</param>
    /// <param name="cancellationToken">Checked between and within evaluations; cancelling returns the best so far with <see cref="MergeSearchResult.Cancelled"/> set.</param>
    /// <exception cref="OperationCanceledException">When cancelled before a starting point was scored.</exception>
    public static MergeSearchResult Run(BaseModel model, IReadOnlyList<LoraAdapter> adapters, IReadOnlyList<TokenRow> rows, MergeSearchOptions? options = null,
        Action<string>? verbose = null, Action<MergeSearchStep>? progress = null, Action<ModuleScaleProgress>? trainingProgress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(adapters);
        ArgumentNullException.ThrowIfNull(rows);
        options ??= new MergeSearchOptions();
        options.Validate(model, adapters.Count);
        var split = TuningSplit.Of(rows, options.ValidationFraction, options.Seed);
        verbose?.Invoke($"{split.Tune.Count} tuning rows, {split.Validation.Count} validation rows (seed {options.Seed})");
        var search = new Search(model, adapters, split, options, verbose, progress, cancellationToken);
        bool cancelled = false;
        try
        {
            search.Explore(trainingProgress);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && search.Best is not null)
        {
            cancelled = true;
        }
        if (search.Best is null)
            throw new System.Diagnostics.UnreachableException("the starting points are scored first and one of them is the best");
        return search.Result(cancelled);
    }

    private sealed class Search(BaseModel model, IReadOnlyList<LoraAdapter> adapters, TuningSplit split, MergeSearchOptions options,
        Action<string>? verbose, Action<MergeSearchStep>? progress, CancellationToken cancellationToken)
    {
        private const string CandidateName = "optimize-candidate";
        private readonly CandidateScorer _scorer = new(model, split, options.BatchSize);
        private readonly List<MergeSearchStep> _history = [];
        private MergeSearchStep? _start;
        private LoraAdapter? _bestAdapter;

        public MergeSearchStep? Best { get; private set; }

        private int Left => options.Budget - _history.Count;

        public void Explore(Action<ModuleScaleProgress>? trainingProgress)
        {
            var starts = options.Methods.Distinct().Select(Start).ToList();
            foreach (var start in starts.DistinctBy(s => s.Describe()))
                Evaluate("start", start);
            _start = Best!;
            int reserved = Math.Min(options.Epochs, Math.Max(0, Left - 1));
            var current = _start;
            foreach (var move in SettingsMoves.For(current.Candidate, adapters))
            {
                if (Left <= reserved)
                    break;
                var step = Evaluate("settings", move(current.Candidate));
                if (Objective(step) < Objective(current))
                    current = step;
            }
            var weights = new WeightSearch(current.Candidate.Weights, current.Score.TuneLoss, options);
            while (Left > reserved)
            {
                var proposal = weights.Propose();
                var step = Evaluate("weights", current.Candidate with { Weights = proposal });
                if (weights.Report(proposal, step.Score.TuneLoss))
                    current = step;
            }
            if (Left > 0 && options.Epochs > 0)
                LearnModuleScales(trainingProgress);
        }

        private void LearnModuleScales(Action<ModuleScaleProgress>? trainingProgress)
        {
            var origin = Best!.Candidate;
            // Module scales train on the Cat form, sum_i w_i dW_i; LoRA-LEGO's Mean target approximates the mean instead,
            // so its weights count 1/N there. Other methods are approximations of the sum, scored as merged like any candidate.
            double toCat = origin.Method is null && origin.Lego.Target == LegoTarget.Mean ? 1.0 / adapters.Count : 1.0;
            // Each epoch is scored, so a budget that has room for fewer than Epochs trains only as many.
            int epochs = Math.Min(options.Epochs, Left);
            verbose?.Invoke($"module scales: {epochs} epoch(s) of Adam (learning rate {options.LearningRate}) from {origin.Describe()}");
            var snapshots = ModuleScaleTrainer.Train(model, adapters, origin.Weights.Select(w => w * toCat).ToArray(), split.Tune, epochs, options,
                trainingProgress, cancellationToken);
            foreach (var scales in snapshots)
                Evaluate("module scales", origin with { ModuleScales = scales });
        }

        private MergeCandidate Start(MergeMethod? method)
        {
            int n = adapters.Count;
            if (method == DefaultMerge.Method)
                return MergeCandidate.Default(n);
            if (method is not { } peft)
                return new MergeCandidate { Weights = Enumerable.Repeat(1.0, n).ToArray() };
            var recipe = peft.Recipe();
            // A TIES merge averages the adapters that agree, so weight 1 keeps their size; the other methods sum, so 1/N.
            double weight = recipe.ElectsSign ? 1.0 : 1.0 / n;
            return new MergeCandidate
            {
                Method = peft,
                Density = recipe.NeedsDensity ? MergeCandidate.StartDensity : null,
                Weights = Enumerable.Repeat(weight, n).ToArray(),
            };
        }

        private double Objective(MergeSearchStep step) => step.Score.TuneLoss + options.L1 * step.Candidate.Weights.Sum(Math.Abs);

        private MergeSearchStep Evaluate(string stage, MergeCandidate candidate)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var merged = CandidateMerger.Merge(candidate, adapters, CandidateName, options.Seed, cancellationToken);
            var score = _scorer.Score(merged, cancellationToken);
            // Among the starting points the best is the one with the lowest loss on all the rows (the reference the
            // result must not be worse than); afterwards, the lowest validation loss among those no worse than it.
            bool isBest = Best is null || (_start is null
                ? score.Loss < Best.Score.Loss
                : score.NoWorseThan(_start.Score) && score.ValidationLoss < Best.Score.ValidationLoss);
            var step = new MergeSearchStep(_history.Count + 1, stage, candidate, score, isBest);
            _history.Add(step);
            if (isBest)
                (Best, _bestAdapter) = (step, merged);
            verbose?.Invoke($"#{step.Evaluation} {stage}: {candidate.Describe()} -> tune {score.TuneLoss:F4}, validation {score.ValidationLoss:F4}" +
                (isBest ? " (best so far)" : ""));
            progress?.Invoke(step);
            return step;
        }

        public MergeSearchResult Result(bool cancelled)
        {
            var best = Best!;
            var names = adapters.Select(a => a.Name).ToList();
            var json = (JsonObject)_bestAdapter!.Config.Json.DeepClone();
            var record = new JsonObject
            {
                ["method"] = "optimize",
                ["references"] = new JsonArray("arXiv:2307.13269 (LoraHub)", "arXiv:2310.02575 (AdaMerging)"),
                ["choice"] = best.Candidate.ToJson(names),
                ["stage"] = best.Stage,
                ["tune_loss"] = best.Score.TuneLoss,
                ["validation_loss"] = best.Score.ValidationLoss,
                ["start"] = new JsonObject { ["settings"] = _start!.Settings, ["tune_loss"] = _start.Score.TuneLoss, ["validation_loss"] = _start.Score.ValidationLoss },
                ["seed"] = options.Seed,
                ["budget"] = options.Budget,
                ["evaluations"] = _history.Count,
                ["cancelled"] = cancelled,
                ["validation_fraction"] = options.ValidationFraction,
                ["tune_rows"] = split.Tune.Count,
                ["validation_rows"] = split.Validation.Count,
                ["l1"] = options.L1,
                ["epochs"] = options.Epochs,
                ["learning_rate"] = options.LearningRate,
            };
            if (_bestAdapter.Provenance is { } merge)
                record["merge"] = merge.DeepClone();
            var adapter = LoraAdapter.Create(options.Name, new AdapterConfig(json), _bestAdapter.Modules, record);
            return new MergeSearchResult(adapter, best.Candidate, best.Score, _start, _history, cancelled);
        }
    }
}
