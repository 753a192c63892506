using LoraLego.Core.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraLego.Core.Mixture;

/// <summary>
/// Adam over an attached mixture's gate parameters, one step per batch: forward with gradients,
/// task loss + alpha * balance loss, backward, update. The model and experts hold no gradients,
/// so only the gates move.
/// </summary>
internal sealed class GateOptimizer : IDisposable
{
    private readonly MixtureAttachment _attachment;
    private readonly Adam _adam;
    private readonly double _balanceWeight;

    public GateOptimizer(MixtureAttachment attachment, double learningRate, double balanceWeight)
    {
        _attachment = attachment;
        _balanceWeight = balanceWeight;
        _adam = optim.Adam(attachment.Parameters, learningRate);
    }

    /// <summary>Trains on one batch; <paramref name="usage"/>, when given, also receives its gate values.</summary>
    public (double Loss, double TaskLoss, double BalanceLoss) Step(IReadOnlyList<TokenRow> rows, GateUsageAccumulator? usage = null)
    {
        var batch = new PaddedBatch(rows);
        var mixture = _attachment.Mixture;
        var device = _attachment.Model.Device;
        using var scope = NewDisposeScope();
        _attachment.Recorder.IsOn = true;
        try
        {
            var logits = _attachment.Model.ForwardRecordingGradients(batch.Ids(), batch.PromptLengths);
            var mask = batch.TokenMask(device);
            var taskLoss = batch.Loss(logits, nn.Reduction.Mean);
            var recorded = _attachment.Recorder.Values;
            var balance = BalanceLoss.Compute(recorded.Select(r => r.Values).ToList(), mask,
                mixture.EnabledMask());
            var total = taskLoss.add(balance, alpha: _balanceWeight);
            _adam.zero_grad();
            total.backward();
            _adam.step();
            usage?.Add(recorded, mask);
            return (total.item<float>(), taskLoss.item<float>(), balance.item<float>());
        }
        finally
        {
            _attachment.Recorder.IsOn = false;
            _attachment.ReleasePass();
        }
    }

    public void Dispose() => _adam.Dispose();
}
