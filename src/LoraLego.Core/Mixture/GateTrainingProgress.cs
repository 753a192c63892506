namespace LoraLego.Core.Mixture;

/// <summary>Where a gate training stands, reported after every step.</summary>
/// <param name="Epoch">1-based epoch of the step.</param>
/// <param name="Epochs">Epochs in all.</param>
/// <param name="Step">1-based step over the whole training.</param>
/// <param name="TotalSteps">Steps in all.</param>
/// <param name="Loss">This step's total loss, task + alpha * balance.</param>
/// <param name="TaskLoss">This step's mean next-token cross-entropy.</param>
/// <param name="BalanceLoss">This step's balance loss, -sum_i log q_i.</param>
/// <param name="Tokens">Input tokens trained on so far.</param>
/// <param name="Elapsed">Time since training started.</param>
/// <param name="EpochLoss">The epoch's mean total loss on its last step, else null.</param>
public sealed record GateTrainingProgress(int Epoch, int Epochs, int Step, int TotalSteps, double Loss, double TaskLoss,
    double BalanceLoss, long Tokens, TimeSpan Elapsed, double? EpochLoss);
