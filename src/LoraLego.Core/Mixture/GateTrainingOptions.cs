using LoraLego.Core.Compute;

namespace LoraLego.Core.Mixture;

/// <summary>How <see cref="GateTrainer"/> trains a mixture's gates.</summary>
public sealed record GateTrainingOptions
{
    /// <summary>Passes over the training rows. Gates need a few hundred steps to route (docs/mole-routing.md).</summary>
    public int Epochs { get; init; } = 4;

    /// <summary>
    /// Adam's learning rate. The paper's 1e-5 suits gates fine-tuned for 800 steps on a large
    /// model; gates that start at zero on a small set need a larger one. 5e-3 routes skillbench's
    /// four skills at batch 16 (docs/mole-routing.md); 1e-2 and more saturates gates before they route.
    /// </summary>
    public double LearningRate { get; init; } = 5e-3;

    /// <summary>alpha in total = task loss + alpha * balance loss; the paper uses 0.5. 0 trains on the task alone.</summary>
    public double BalanceWeight { get; init; } = 0.5;

    /// <summary>Rows per optimizer step; shorter rows of a batch are right-padded.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Seeds the shuffling of rows each epoch: the same seed on the CPU gives the same gates.</summary>
    public int Seed { get; init; }

    /// <summary>
    /// Where the gates train. They train where the model is; Auto accepts that, Cpu or Cuda are
    /// checked against it so a script that asks for a GPU does not silently train on the CPU.
    /// </summary>
    public ComputeDevice Device { get; init; } = ComputeDevice.Auto;
}
