using LoraLego.Core.Adapters;
using LoraLego.Core.Models;

namespace LoraLego.Core.Merging.Tuning;

/// <summary>Scores merged adapters on a model: attached unmerged for the evaluation only, so the model is left as it was.</summary>
internal sealed class CandidateScorer(BaseModel model, TuningSplit split, int batchSize)
{
    public CandidateScore Score(LoraAdapter merged, CancellationToken cancellationToken)
    {
        var options = new EvaluationOptions { BatchSize = batchSize };
        model.Attach(merged);
        try
        {
            var tune = PerplexityEvaluator.Evaluate(model, split.Tune, options, cancellationToken: cancellationToken);
            var validation = PerplexityEvaluator.Evaluate(model, split.Validation, options, cancellationToken: cancellationToken);
            double all = (tune.Loss * tune.Tokens + validation.Loss * validation.Tokens) / (tune.Tokens + validation.Tokens);
            return new CandidateScore(tune.Loss, validation.Loss, all, validation.ExactMatch);
        }
        finally
        {
            model.Detach(merged.Name);
        }
    }
}
