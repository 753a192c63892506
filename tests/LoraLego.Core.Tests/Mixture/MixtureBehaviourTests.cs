using LoraLego.Core.Compute;
using LoraLego.Core.Formats;
using LoraLego.Core.Mixture;
using LoraLego.Core.Models;
using LoraLego.Core.Tests.Models;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Mixture;

/// <summary>Exact properties of a mixture: one expert, masking, the balance loss, saving, determinism, errors.</summary>
public sealed class MixtureBehaviourTests : IDisposable
{
    private readonly BaseModel _model = BaseModel.Load(GoldenLogits.BaseModelFolder, new BaseModelOptions { Device = ComputeDevice.Cpu });
    private readonly string _scratch = Directory.CreateTempSubdirectory("loralego-mole-").FullName;

    private static LoraLego.Core.Adapters.LoraAdapter Read(string name) => PeftAdapterReader.Read(Fixtures.Adapter(name));

    private Tensor Logits(LoraMixture mixture)
    {
        using var attached = mixture.AttachTo(_model);
        using var ids = GoldenLogits.InputIds();
        return _model.Forward(ids);
    }

    private Tensor LogitsWithAdapters(params (string Name, double Weight)[] adapters)
    {
        foreach (var (name, weight) in adapters)
            _model.Attach(Read(name), weight);
        try
        {
            using var ids = GoldenLogits.InputIds();
            return _model.Forward(ids);
        }
        finally
        {
            _model.DetachAll();
        }
    }

    // A few steps on fixed rows with a large learning rate, so the gates are far from uniform.
    private LoraMixture Trained(params string[] experts) => Trained(GateInput.ExpertOutputs, experts);

    private LoraMixture Trained(GateInput gateInput, params string[] experts)
    {
        var mixture = LoraMixture.Create(experts.Select(Read).ToList(), name: "trained", gateInput: gateInput);
        var random = new Random(3);
        var rows = Enumerable.Range(0, 8).Select(_ => Enumerable.Range(0, 12).Select(_ => (long)random.Next(256)).ToArray()).ToList();
        GateTrainer.Train(_model, mixture, rows, new GateTrainingOptions { Epochs = 3, LearningRate = 0.5, BatchSize = 4 });
        return mixture;
    }

    [Theory]
    [InlineData(MixtureGranularity.Layer, GateInput.ExpertOutputs)]
    [InlineData(MixtureGranularity.Module, GateInput.ExpertOutputs)]
    [InlineData(MixtureGranularity.Layer, GateInput.HiddenState)]
    [InlineData(MixtureGranularity.Module, GateInput.Likelihood)]
    [InlineData(MixtureGranularity.Model, GateInput.Prompt)]
    [InlineData(MixtureGranularity.Layer, GateInput.Prompt)]
    public void A_mixture_of_one_expert_is_that_adapter(MixtureGranularity granularity, GateInput gateInput)
    {
        using var mixture = LoraMixture.Create([Read("a")], granularity, gateInput: gateInput);
        using var logits = Logits(mixture);
        using var expected = GoldenLogits.Expected("adapter/a");
        Assert.True(GoldenLogits.MaxAbsError(logits, expected) < GoldenLogits.Tolerance);
        Assert.Equal(granularity switch { MixtureGranularity.Model => 1, MixtureGranularity.Layer => 2, _ => 14 }, mixture.Gates.Count);
    }

    [Theory]
    [InlineData(GateInput.ExpertOutputs)]
    [InlineData(GateInput.HiddenState)]
    [InlineData(GateInput.Likelihood)]
    [InlineData(GateInput.Prompt)]
    public void Disabling_the_other_expert_of_a_trained_pair_gives_the_remaining_adapter_and_enabling_restores_the_mixture(GateInput gateInput)
    {
        using var mixture = Trained(gateInput, "a", "b");
        using var before = Logits(mixture);
        using var adapterA = LogitsWithAdapters(("a", 1.0));
        Assert.True(GoldenLogits.MaxAbsError(before, adapterA) > 1e-3, "the trained mixture should differ from a alone");
        mixture.Disable("b");
        using var disabled = Logits(mixture);
        Assert.Equal(0, GoldenLogits.MaxAbsError(disabled, adapterA));
        mixture.Enable("b");
        using var after = Logits(mixture);
        Assert.Equal(0, GoldenLogits.MaxAbsError(after, before));
    }

    [Fact]
    public void Disabling_an_expert_of_untrained_gates_equals_the_mixture_of_the_rest()
    {
        using var three = LoraMixture.Create([Read("a"), Read("b"), Read("c")]);
        three.Disable("c");
        using var two = LoraMixture.Create([Read("a"), Read("b")]);
        using var masked = Logits(three);
        using var pair = Logits(two);
        using var halves = LogitsWithAdapters(("a", 0.5), ("b", 0.5));
        Assert.True(GoldenLogits.MaxAbsError(masked, pair) < 1e-5);
        Assert.True(GoldenLogits.MaxAbsError(masked, halves) < 1e-5);
        Assert.Equal(["a", "b"], three.EnabledExperts);
    }

    [Fact]
    public void Masked_gate_values_are_the_others_renormalised()
    {
        using var mixture = Trained("a", "b", "c");
        // One token: the measured means are that token's gate values themselves.
        long[][] token = [[42]];
        var all = GateMeter.Measure(_model, mixture, token);
        mixture.Disable("c");
        var masked = GateMeter.Measure(_model, mixture, token);
        for (int g = 0; g < mixture.Gates.Count; g++)
        {
            var p = all.Gates[g].Means;
            var q = masked.Gates[g].Means;
            Assert.True(Math.Abs(p[0] - p[1]) > 1e-3, "trained gates should not be uniform");
            Assert.Equal(p[0] / (p[0] + p[1]), q[0], 5);
            Assert.Equal(p[1] / (p[0] + p[1]), q[1], 5);
            Assert.Equal(0, q[2]);
        }
    }

    [Fact]
    public void The_balance_loss_is_minus_the_log_of_the_product_of_mean_gate_values_and_has_a_gradient()
    {
        // Two gates over a batch of one row of two tokens, three experts.
        using var first = tensor(new float[] { 0.7f, 0.2f, 0.1f, 0.5f, 0.3f, 0.2f }, [1, 2, 3]).requires_grad_(true);
        using var second = tensor(new float[] { 0.1f, 0.1f, 0.8f, 0.6f, 0.2f, 0.2f }, [1, 2, 3]).requires_grad_(true);
        double[] q = [(0.7 + 0.5 + 0.1 + 0.6) / 4, (0.2 + 0.3 + 0.1 + 0.2) / 4, (0.1 + 0.2 + 0.8 + 0.2) / 4];
        using var loss = BalanceLoss.Compute([first, second]);
        Assert.Equal(-Math.Log(q[0] * q[1] * q[2]), loss.item<float>(), 5);
        loss.backward();
        // d/dg_i of -sum log q_i is -1 / (count * q_i) at every token.
        using var grad = first.grad!;
        Assert.Equal(-1 / (4 * q[1]), grad[0, 1, 1].item<float>(), 5);

        using var mask = tensor(new float[] { 1, 0 }, [1, 2]);
        using var masked = BalanceLoss.Compute([first, second], mask, [true, true, false]);
        Assert.Equal(-Math.Log((0.7 + 0.1) / 2 * ((0.2 + 0.1) / 2)), masked.item<float>(), 5);
    }

    [Fact]
    public void The_balance_term_moves_the_gates()
    {
        var random = new Random(9);
        var rows = Enumerable.Range(0, 4).Select(_ => Enumerable.Range(0, 10).Select(_ => (long)random.Next(256)).ToArray()).ToList();
        using var taskOnly = Trained("a", "b");
        using var balanced = Trained("a", "b");
        GateTrainer.Train(_model, taskOnly, rows, new GateTrainingOptions { LearningRate = 0.1, BalanceWeight = 0, BatchSize = 4 });
        GateTrainer.Train(_model, balanced, rows, new GateTrainingOptions { LearningRate = 0.1, BalanceWeight = 10, BatchSize = 4 });
        using var withoutBalance = Logits(taskOnly);
        using var withBalance = Logits(balanced);
        Assert.True(GoldenLogits.MaxAbsError(withoutBalance, withBalance) > 0, "the balance term carried no gradient");
    }

    [Theory]
    [InlineData(GateInput.ExpertOutputs)]
    [InlineData(GateInput.Likelihood)]
    [InlineData(GateInput.Prompt)]
    public void Export_then_import_gives_identical_logits_masks_and_training(GateInput gateInput)
    {
        using var mixture = Trained(gateInput, "a", "b", "c");
        mixture.Disable("b");
        string folder = Path.Combine(_scratch, "mix");
        MixtureFolder.Save(mixture, folder);
        using var loaded = MixtureFolder.Load(folder);
        using var original = Logits(mixture);
        using var reloaded = Logits(loaded);
        Assert.Equal(0, GoldenLogits.MaxAbsError(reloaded, original));
        Assert.Equal(["b"], loaded.DisabledExperts);
        Assert.Equal(mixture.LossHistory, loaded.LossHistory);
        Assert.Equal(mixture.Training!.GateUsage.Select(g => g.ToString()), loaded.Training!.GateUsage.Select(g => g.ToString()));
        Assert.Equal(folder, loaded.Path);

        var e = Assert.Throws<LoraException>(() => MixtureFolder.Save(mixture, folder));
        Assert.Equal(LoraErrorKind.AlreadyExists, e.Kind);
        using var untrained = LoraMixture.Create([Read("a")]);
        MixtureFolder.Save(untrained, folder, overwrite: true);
        Assert.False(Directory.Exists(Path.Combine(folder, MixtureFolder.ExpertsFolderName, "b")), "replacing a mixture leaves no stale experts");
    }

    // Folders written before gate_input existed hold per-layer gates on the experts' outputs; the
    // new defaults (Prompt, Model) must not change how they read.
    [Fact]
    public void A_folder_written_before_gate_input_existed_loads_as_gates_on_the_experts_outputs()
    {
        using var mixture = LoraMixture.Create([Read("a"), Read("b")], MixtureGranularity.Layer, gateInput: GateInput.ExpertOutputs);
        GateTrainer.Train(_model, mixture, [[5, 17, 99, 3, 42, 8, 1, 2], [7, 7, 200, 31, 4, 9, 12, 6]], new GateTrainingOptions { LearningRate = 0.5, BatchSize = 2 });
        string folder = Path.Combine(_scratch, "before-gate-input");
        MixtureFolder.Save(mixture, folder);
        string manifest = Path.Combine(folder, MixtureFolder.ManifestFileName);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(manifest))!.AsObject();
        Assert.True(json.Remove("gate_input"));
        File.WriteAllText(manifest, json.ToJsonString());
        using var loaded = MixtureFolder.Load(folder);
        Assert.Equal(GateInput.ExpertOutputs, loaded.GateInput);
        Assert.Equal(MixtureGranularity.Layer, loaded.Granularity);
        using var original = Logits(mixture);
        using var reloaded = Logits(loaded);
        Assert.Equal(0, GoldenLogits.MaxAbsError(reloaded, original));
    }

    // Layer 0's gate reads q_proj: 64 wide in and out on the fixture model.
    [Theory]
    [InlineData(GateInput.ExpertOutputs, 2 * 64)]
    [InlineData(GateInput.HiddenState, 64)]
    [InlineData(GateInput.Likelihood, 2)]
    [InlineData(GateInput.Prompt, 64)]
    public void A_gate_is_as_wide_as_what_it_reads_and_round_trips(GateInput gateInput, long width)
    {
        using var mixture = LoraMixture.Create([Read("a"), Read("b")], MixtureGranularity.Layer, gateInput: gateInput);
        Assert.Equal(width, mixture.Gates.Single(g => g.Key == "model.layers.0").InputWidth);
        string folder = Path.Combine(_scratch, gateInput.ToString());
        MixtureFolder.Save(mixture, folder);
        using var loaded = MixtureFolder.Load(folder);
        Assert.Equal(gateInput, loaded.GateInput);
        using var untrained = Logits(loaded);
        using var average = LogitsWithAdapters(("a", 0.5), ("b", 0.5));
        Assert.True(GoldenLogits.MaxAbsError(untrained, average) < 1e-5, "an untrained gate is uniform whatever it reads");
    }

    // The first step's task loss is computed before any update, so with untrained gates it is the
    // evaluator's loss of the uniform mixture on the same rows: the answers only, for labelled rows.
    [Fact]
    public void Gate_training_scores_only_the_labelled_answers_as_the_evaluator_does()
    {
        var random = new Random(5);
        var rows = Enumerable.Range(0, 4).Select(_ =>
        {
            var ids = Enumerable.Range(0, 12).Select(_ => (long)random.Next(256)).ToArray();
            return new TokenRow(ids, ids.Select((id, t) => t < 7 ? TokenRow.Ignored : id).ToArray());
        }).ToList();
        double FirstTaskLoss(IReadOnlyList<TokenRow> training)
        {
            using var mixture = LoraMixture.Create([Read("a"), Read("b")]);
            double? first = null;
            GateTrainer.Train(_model, mixture, training, new GateTrainingOptions { Epochs = 1, BatchSize = training.Count }, p => first ??= p.TaskLoss);
            return first!.Value;
        }
        using var uniform = LoraMixture.Create([Read("a"), Read("b")]);
        double answers, everyToken;
        using (uniform.AttachTo(_model))
        {
            answers = PerplexityEvaluator.Evaluate(_model, rows).Loss;
            everyToken = PerplexityEvaluator.Evaluate(_model, rows.Select(r => r.Ids)).Loss;
        }
        Assert.True(Math.Abs(answers - everyToken) > 1e-3, "the rows' answers and all their tokens should score differently");
        Assert.Equal(answers, FirstTaskLoss(rows), 4);
    }

    // A prompt gate pools only the prompt of a labelled row, so every token of the row gets the same
    // values and the answer cannot change them; a row without labels is pooled causally, so its
    // later tokens do change the row's mean share.
    [Fact]
    public void A_prompt_gate_routes_a_labelled_row_by_its_prompt_alone()
    {
        using var mixture = Trained(GateInput.Prompt, "a", "b", "c");
        long[] prompt = [5, 17, 99, 3, 42, 8];
        long[] Row(long first) => [.. prompt, first, first + 1, first + 2, first + 3];
        long[] Labels(long[] ids) => ids.Select((id, t) => t < prompt.Length ? TokenRow.Ignored : id).ToArray();
        TokenRow[] labelled = [new(Row(10), Labels(Row(10))), new(Row(200), Labels(Row(200)))];
        var withPrompt = GateMeter.Measure(_model, mixture, labelled).RowShares;
        Assert.Equal(withPrompt[0], withPrompt[1]);
        var causal = GateMeter.Measure(_model, mixture, labelled.Select(r => new TokenRow(r.Ids))).RowShares;
        Assert.True(causal[0].Zip(causal[1]).Any(p => Math.Abs(p.First - p.Second) > 1e-4), "a row without labels is routed by all its tokens");
    }

    // With identity weights and temperature 1 a likelihood gate is Bayes' rule under a uniform
    // prior: at each token, the posterior probability that each expert wrote the row so far,
    // here computed from each adapter's own logits. Amplified experts, so the posterior moves.
    [Fact]
    public void A_likelihood_gate_with_identity_weights_gives_each_token_the_posterior_over_the_experts()
    {
        var experts = new[] { TwoDomains.Amplified(Read("a")), TwoDomains.Amplified(Read("b")) };
        using var untrained = LoraMixture.Create(experts, gateInput: GateInput.Likelihood);
        string folder = Path.Combine(_scratch, "bayes");
        MixtureFolder.Save(untrained, folder);
        SafetensorsWriter.Write(Path.Combine(folder, MixtureFolder.GatesFileName), untrained.Gates.SelectMany(g => new[]
        {
            new SafetensorsWriteItem(g.Key + ".weight", SafetensorsDType.F32, [2, 2], () => eye(2, dtype: ScalarType.Float32)),
            new SafetensorsWriteItem(g.Key + ".log_temperature", SafetensorsDType.F32, [1], () => zeros(1, ScalarType.Float32)),
        }).ToList());
        using var bayes = MixtureFolder.Load(folder);

        long[] row = [17, 200, 3, 99, 45, 45, 120, 7, 250, 61, 18, 77];
        var logLikelihoods = experts.Select(e => RunningLogLikelihood(e, row)).ToArray();
        // The meter gives each gate's mean over the row; the value at token t is what the prefix
        // of t + 1 tokens adds to the prefix of t.
        var previousMeans = new double[bayes.Gates.Count];
        var posteriors = new List<double>();
        for (int t = 0; t < row.Length; t++)
        {
            double posteriorA = 1 / (1 + Math.Exp(logLikelihoods[1][t] - logLikelihoods[0][t]));
            posteriors.Add(posteriorA);
            var measured = GateMeter.Measure(_model, bayes, [row[..(t + 1)]]);
            for (int g = 0; g < measured.Gates.Count; g++)
            {
                double mean = measured.Gates[g].Means[0];
                Assert.Equal(posteriorA, (t + 1) * mean - t * previousMeans[g], 4);
                previousMeans[g] = mean;
            }
        }
        Assert.Equal(0.5, posteriors[0]);
        Assert.True(posteriors.Max(p => Math.Abs(p - 0.5)) > 0.2, "the experts should disagree enough for the posterior to move");
    }

    // L(t) = sum over s = 1..t of log p(row[s] | row[..s]) with the adapter attached; L(0) = 0.
    private double[] RunningLogLikelihood(LoraLego.Core.Adapters.LoraAdapter adapter, long[] row)
    {
        _model.Attach(adapter);
        try
        {
            using var ids = tensor(row, [1, row.Length]);
            using var logits = _model.Forward(ids);
            using var logProbabilities = logits.to(ScalarType.Float64).log_softmax(-1);
            var running = new double[row.Length];
            for (int t = 1; t < row.Length; t++)
                running[t] = running[t - 1] + logProbabilities[0, t - 1, row[t]].item<double>();
            return running;
        }
        finally
        {
            _model.DetachAll();
        }
    }

    [Theory]
    [InlineData("\"gate_input\": \"Likelihood\"", "\"gate_input\": \"Bogus\"", "gate_input 'Bogus' is not one of ExpertOutputs, HiddenState, Likelihood")]
    [InlineData("\"granularity\": \"Model\"", "\"granularity\": \"1\"", "granularity '1' is not one of Layer, Module, Model")]
    public void A_manifest_naming_no_known_member_is_refused_with_the_names_it_could_have(string written, string replacement, string message)
    {
        using var mixture = LoraMixture.Create([Read("a")], gateInput: GateInput.Likelihood);
        string folder = Path.Combine(_scratch, "manifest-" + replacement.Split('"')[1]);
        MixtureFolder.Save(mixture, folder);
        string manifest = Path.Combine(folder, MixtureFolder.ManifestFileName);
        string text = File.ReadAllText(manifest);
        Assert.Contains(written, text);
        File.WriteAllText(manifest, text.Replace(written, replacement));
        var e = Assert.Throws<LoraException>(() => MixtureFolder.Load(folder));
        Assert.Equal(LoraErrorKind.InvalidData, e.Kind);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void The_same_seed_trains_the_same_gates()
    {
        using var first = Trained("a", "b");
        using var second = Trained("a", "b");
        Assert.Equal(first.LossHistory, second.LossHistory);
        using var l1 = Logits(first);
        using var l2 = Logits(second);
        Assert.Equal(0, GoldenLogits.MaxAbsError(l1, l2));
    }

    [Fact]
    public void Mistakes_are_reported_with_their_kind_and_name()
    {
        var a = Read("a");
        Assert.Equal(LoraErrorKind.AlreadyExists, Assert.Throws<LoraException>(() => LoraMixture.Create([a, a])).Kind);
        Assert.Equal(LoraErrorKind.InvalidArgument, Assert.Throws<LoraException>(() => LoraMixture.Create([a], temperature: 0)).Kind);
        using var mixture = LoraMixture.Create([a, Read("b")]);
        var unknown = Assert.Throws<LoraException>(() => mixture.Disable("zzz"));
        Assert.Equal((LoraErrorKind.NotFound, "zzz"), (unknown.Kind, unknown.Target));
        Assert.Equal(LoraErrorKind.InvalidArgument, Assert.Throws<LoraException>(() => mixture.Disable("a", "b")).Kind);
        Assert.Equal(0.5, mixture.GateUsage()[0].MeanOf("b"));
        Assert.Equal(LoraErrorKind.NotFound, Assert.Throws<LoraException>(() => mixture.GateUsage()[0].MeanOf("zzz")).Kind);
        var measured = GateMeter.Measure(_model, mixture, [[1L, 2L]]);
        Assert.Equal(LoraErrorKind.NotFound, Assert.Throws<LoraException>(() => measured.FractionRoutedTo("zzz")).Kind);
        _model.Attach(Read("c"));
        Assert.Equal(LoraErrorKind.InvalidArgument, Assert.Throws<LoraException>(() => mixture.AttachTo(_model)).Kind);
        _model.DetachAll();
        Assert.Equal(LoraErrorKind.NotFound, Assert.Throws<LoraException>(() => MixtureFolder.Load(Path.Combine(_scratch, "none"))).Kind);
        Assert.Equal(LoraErrorKind.NotFound, Assert.Throws<LoraException>(() => MixtureFolder.Load(Fixtures.Adapter("a"))).Kind);

        // Likelihood gates run the model before every pass, which two mixtures cannot share, even on different modules.
        LoraLego.Core.Adapters.LoraAdapter Only(string name, string module) =>
            LoraLego.Core.Adapters.LoraAdapter.Create(name, a.Config, Read(name).Modules.Where(m => m.Key.EndsWith(module, StringComparison.Ordinal)).ToList());
        using var onQueries = LoraMixture.Create([Only("a", "q_proj")], gateInput: GateInput.Likelihood);
        using var onValues = LoraMixture.Create([Only("b", "v_proj")], gateInput: GateInput.Likelihood);
        using (onQueries.AttachTo(_model))
            Assert.Equal(LoraErrorKind.InvalidArgument, Assert.Throws<LoraException>(() => onValues.AttachTo(_model)).Kind);
        using (onValues.AttachTo(_model))
            Assert.NotNull(_model.GetLinear("model.layers.0.self_attn.v_proj")!.Contribution);
    }

    [Fact]
    public void The_training_speed_measure_leaves_the_gates_alone()
    {
        using var mixture = LoraMixture.Create([Read("a"), Read("b")]);
        var speed = GateTrainingBenchmark.Measure(_model, mixture, batchSize: 2, sequenceLength: 8, steps: 2);
        Assert.True(speed.StepsPerSecond > 0 && speed.TokensPerSecond > 0);
        Assert.All(mixture.GateUsage(), g => Assert.Equal([0.5, 0.5], g.Means));
        Assert.Null(mixture.Training);
    }

    public void Dispose()
    {
        _model.Dispose();
        try
        {
            Directory.Delete(_scratch, recursive: true);
        }
        catch (IOException)
        {
            // Memory-mapped experts can still be open; the OS cleans the temp folder.
        }
    }
}
