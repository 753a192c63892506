using LoraLego.Core.Adapters;
using LoraLego.Core.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraLego.Core.Merging.Tuning;

/// <summary>Where the gradient stage is: after each step.</summary>
public readonly record struct ModuleScaleProgress(int Epoch, int Epochs, int Step, int Steps, double Loss);

/// <summary>
/// The gradient stage of a merge search (layer-wise AdaMerging, arXiv 2310.02575, on LoRA updates): one multiplier per
/// module and adapter, starting at 1 around the given weights, trained with Adam on the answer-only loss through the
/// frozen model. The model's weights and the adapters' factors never require gradients; only the multipliers learn.
/// </summary>
internal static class ModuleScaleTrainer
{
    /// <summary>Trains and returns the multipliers after every epoch, so that the caller can choose among them on held-out rows.</summary>
    /// <param name="catWeights">The weights of the Cat form the multipliers act on: w_i dW_i summed.</param>
    /// <param name="epochs">Passes over the rows, each ending in a snapshot.</param>
    public static IReadOnlyList<Dictionary<string, double[]>> Train(BaseModel model, IReadOnlyList<LoraAdapter> adapters, double[] catWeights,
        IReadOnlyList<TokenRow> rows, int epochs, MergeSearchOptions options, Action<ModuleScaleProgress>? progress, CancellationToken cancellationToken)
    {
        var keys = MergeInput.ModuleKeys(adapters.Select(a => new MergeInput(a)));
        using var multipliers = new Parameter(ones(keys.Count, adapters.Count, ScalarType.Float32, model.Device));
        var contributions = new List<(AdaptedLinear Layer, ScaledLoraContribution Contribution)>();
        var snapshots = new List<Dictionary<string, double[]>>();
        try
        {
            for (int k = 0; k < keys.Count; k++)
            {
                var branches = adapters.Select((a, i) => (i, Module: a.GetModule(keys[k]))).Where(p => p.Module is not null)
                    .Select(p => (p.i, LoraBranch.Load(adapters[p.i].Name, p.Module!, model.DType.ToScalarType(), model.Device))).ToList();
                var layer = model.LayerFor(adapters.Select(a => a.GetModule(keys[k])).First(m => m is not null)!, adapters[branches[0].i].Name);
                var contribution = new ScaledLoraContribution(branches, multipliers, k, catWeights);
                contributions.Add((layer, contribution));
                layer.Contribution = contribution;
            }
            using var adam = optim.Adam([multipliers], options.LearningRate);
            var order = rows.ToArray();
            var shuffler = new Random(options.Seed);
            int steps = (order.Length + options.BatchSize - 1) / options.BatchSize;
            for (int epoch = 1; epoch <= epochs; epoch++)
            {
                shuffler.Shuffle(order);
                int step = 0;
                foreach (var batch in order.Chunk(options.BatchSize))
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    double loss = Step(model, adam, batch);
                    progress?.Invoke(new ModuleScaleProgress(epoch, epochs, ++step, steps, loss));
                }
                snapshots.Add(Snapshot(keys, multipliers));
            }
            return snapshots;
        }
        finally
        {
            foreach (var (layer, contribution) in contributions)
            {
                layer.Contribution = null;
                contribution.Dispose();
            }
        }
    }

    private static double Step(BaseModel model, optim.Optimizer adam, IReadOnlyList<TokenRow> rows)
    {
        var batch = new PaddedBatch(rows);
        using var scope = NewDisposeScope();
        var logits = model.ForwardRecordingGradients(batch.Ids());
        var loss = batch.Loss(logits, nn.Reduction.Mean);
        adam.zero_grad();
        loss.backward();
        adam.step();
        return loss.item<float>();
    }

    private static Dictionary<string, double[]> Snapshot(IReadOnlyList<string> keys, Tensor multipliers)
    {
        using var cpu = multipliers.detach().cpu().to(ScalarType.Float64);
        var values = cpu.data<double>().ToArray();
        int n = (int)multipliers.shape[1];
        return keys.Select((key, k) => (key, values.AsSpan(k * n, n).ToArray())).ToDictionary(p => p.key, p => p.Item2, StringComparer.Ordinal);
    }
}
