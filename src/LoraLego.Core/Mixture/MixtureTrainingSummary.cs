namespace LoraLego.Core.Mixture;

/// <summary>What the last gate training of a mixture did, kept with the mixture and saved in mixture.json.</summary>
/// <param name="Epochs">Passes over the training rows.</param>
/// <param name="Steps">Optimizer steps taken.</param>
/// <param name="LearningRate">Adam's learning rate.</param>
/// <param name="BalanceWeight">alpha, the weight of the balance loss in the total.</param>
/// <param name="BatchSize">Rows per step.</param>
/// <param name="Seed">Seed of the row shuffling.</param>
/// <param name="Rows">Training rows per epoch.</param>
/// <param name="Tokens">Input tokens seen over all epochs.</param>
/// <param name="LossHistory">Total loss (task + alpha * balance) of every step, in order.</param>
/// <param name="EpochLosses">Mean total loss of every epoch.</param>
/// <param name="GateUsage">Each gate's mean values per expert over the last epoch.</param>
public sealed record MixtureTrainingSummary(
    int Epochs, int Steps, double LearningRate, double BalanceWeight, int BatchSize, int Seed, int Rows, long Tokens,
    IReadOnlyList<double> LossHistory, IReadOnlyList<double> EpochLosses, IReadOnlyList<GateUsage> GateUsage);
