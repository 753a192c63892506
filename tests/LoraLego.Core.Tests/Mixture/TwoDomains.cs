using LoraLego.Core.Adapters;
using LoraLego.Core.Compute;
using LoraLego.Core.Formats;
using LoraLego.Core.Mixture;
using LoraLego.Core.Models;
using LoraLego.Core.Tests.Models;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Mixture;

/// <summary>
/// Two synthetic domains: token rows sampled from the fixture base model with adapter a attached
/// (domain A) and with adapter b attached (domain B), plus a mixture of a and b whose gates are
/// trained on the union. Built once per test class that uses it.
/// </summary>
public sealed class TwoDomains : IDisposable
{
    // A causal gate learns a row's domain from the row so far, so the first tokens of every row
    // are predicted by an undecided mixture; rows of 24 tokens left that a third of each row.
    public const int RowLength = 64;
    // Low: the base model's next-token distribution is nearly uniform, so only a sharpened one
    // makes rows that show which adapter wrote them.
    private const double SamplingTemperature = 0.1;
    private const double Strength = 300;

    public TwoDomains()
    {
        Model = BaseModel.Load(GoldenLogits.BaseModelFolder, new BaseModelOptions { Device = ComputeDevice.Cpu });
        A = Amplified(PeftAdapterReader.Read(Fixtures.Adapter("a")));
        B = Amplified(PeftAdapterReader.Read(Fixtures.Adapter("b")));
        TrainA = Sample(A, rows: 64, seed: 1);
        TrainB = Sample(B, rows: 64, seed: 2);
        TestA = Sample(A, rows: 32, seed: 3);
        TestB = Sample(B, rows: 32, seed: 4);
        // The domains differ in which token follows which, which gates on pooled states (the
        // paper's on the experts' outputs, or the hidden state) barely see: docs/mole-routing.md.
        Mixture = LoraMixture.Create([A, B], MixtureGranularity.Layer, name: "ab", gateInput: GateInput.Likelihood);
        Training = GateTrainer.Train(Model, Mixture, [.. TrainA, .. TrainB], Options);
    }

    public static GateTrainingOptions Options { get; } = new() { Epochs = 12, LearningRate = 0.02, BatchSize = 16, Seed = 7 };

    public BaseModel Model { get; }

    public LoraAdapter A { get; }

    public LoraAdapter B { get; }

    public List<long[]> TrainA { get; }

    public List<long[]> TrainB { get; }

    public List<long[]> TestA { get; }

    public List<long[]> TestB { get; }

    /// <summary>The mixture of a and b, gates trained on TrainA and TrainB.</summary>
    public LoraMixture Mixture { get; }

    public MixtureTrainingSummary Training { get; }

    /// <summary>Mean next-token loss of the model with <paramref name="adapter"/> attached (none: the base model).</summary>
    public double Loss(LoraAdapter? adapter, IReadOnlyList<long[]> rows)
    {
        if (adapter is not null)
            Model.Attach(adapter);
        try
        {
            return PerplexityEvaluator.Evaluate(Model, rows).Loss;
        }
        finally
        {
            Model.DetachAll();
        }
    }

    public double Loss(LoraMixture mixture, IReadOnlyList<long[]> rows)
    {
        using var attached = mixture.AttachTo(Model);
        return PerplexityEvaluator.Evaluate(Model, rows).Loss;
    }

    // The fixture's adapters barely move the random base model (their factors were scaled by 0.1
    // each), so both would sample the same domain; scaled up, each makes a domain of its own.
    internal static LoraAdapter Amplified(LoraAdapter adapter)
    {
        var modules = adapter.Modules.Select(m =>
        {
            using var a = m.A.LoadFloat32();
            using var b = m.B.LoadFloat32();
            return LoraModule.FromFactors(m.Key, a, b, m.Scaling * Strength);
        }).ToList();
        return LoraAdapter.Create(adapter.Name, adapter.Config, modules);
    }

    // Temperature sampling from the model's own next-token distribution, with a seeded generator.
    private List<long[]> Sample(LoraAdapter adapter, int rows, int seed)
    {
        var random = new Random(seed);
        int vocab = Model.Config.VocabSize;
        var sequences = Enumerable.Range(0, rows).Select(_ => new List<long> { random.Next(vocab) }).ToList();
        Model.Attach(adapter);
        try
        {
            for (int length = 1; length < RowLength; length++)
            {
                using var scope = NewDisposeScope();
                var logits = Model.Forward(tensor(sequences.SelectMany(s => s).ToArray(), [rows, length]));
                var probabilities = logits.select(1, -1).div(SamplingTemperature).softmax(-1).to(ScalarType.Float64).cpu().data<double>().ToArray();
                for (int r = 0; r < rows; r++)
                    sequences[r].Add(Draw(probabilities.AsSpan(r * vocab, vocab), random.NextDouble()));
            }
        }
        finally
        {
            Model.DetachAll();
        }
        return sequences.Select(s => s.ToArray()).ToList();
    }

    private static long Draw(ReadOnlySpan<double> probabilities, double u)
    {
        double cumulative = 0;
        for (int i = 0; i < probabilities.Length; i++)
        {
            cumulative += probabilities[i];
            if (u < cumulative)
                return i;
        }
        return probabilities.Length - 1;
    }

    public void Dispose()
    {
        Mixture.Dispose();
        Model.Dispose();
    }
}
