using LoraLego.Core.Compute;
using LoraLego.Core.Formats;
using LoraLego.Core.Mixture;
using LoraLego.Core.Models;
using LoraLego.Core.Tests;
using LoraLego.Core.Tests.Models;

namespace LoraLego.Cuda.Tests;

public class CudaMixtureTests
{
    private static BaseModel Load(ComputeDevice device) =>
        BaseModel.Load(GoldenLogits.BaseModelFolder, new BaseModelOptions { Device = device });

    // The same rows and seed on both devices: the gates should learn the same, and give the same logits.
    [Theory]
    [InlineData(GateInput.ExpertOutputs)]
    [InlineData(GateInput.Likelihood)]
    [InlineData(GateInput.Prompt)]
    public void Gates_train_and_run_on_cuda_as_on_the_cpu(GateInput gateInput)
    {
        Cuda.Require();
        var random = new Random(3);
        var rows = Enumerable.Range(0, 8).Select(_ => Enumerable.Range(0, 12).Select(_ => (long)random.Next(256)).ToArray()).ToList();
        var options = new GateTrainingOptions { Epochs = 3, LearningRate = 0.5, BatchSize = 4 };
        var results = new[] { ComputeDevice.Cpu, ComputeDevice.Cuda }.Select(device =>
        {
            using var model = Load(device);
            using var mixture = LoraMixture.Create([PeftAdapterReader.Read(Fixtures.Adapter("a")), PeftAdapterReader.Read(Fixtures.Adapter("b"))], gateInput: gateInput);
            var training = GateTrainer.Train(model, mixture, rows, options with { Device = device });
            using var attached = mixture.AttachTo(model);
            using var ids = GoldenLogits.InputIds();
            return (training.LossHistory, Logits: model.Forward(ids).cpu());
        }).ToArray();
        for (int i = 0; i < results[0].LossHistory.Count; i++)
            Assert.Equal(results[0].LossHistory[i], results[1].LossHistory[i], 3);
        double err = GoldenLogits.MaxAbsError(results[1].Logits, results[0].Logits);
        Assert.True(err < 1e-3, $"{gateInput}: CUDA logits differ from the CPU's by {err}");
        foreach (var (_, logits) in results)
            logits.Dispose();
    }
}
