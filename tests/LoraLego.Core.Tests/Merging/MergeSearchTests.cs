using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;
using LoraLego.Core.Merging.Tuning;
using LoraLego.Core.Models;

namespace LoraLego.Core.Tests.Merging;

/// <summary>The merge search on skillbench, on a few rows per skill so that each test takes seconds.</summary>
public sealed class MergeSearchTests : IDisposable
{
    private static readonly string[] Skills = ["swap", "complement", "increment", "descend"];
    private readonly BaseModel _model = BaseModel.Load(Path.Combine(Fixtures.Skillbench, "base"), new BaseModelOptions { Device = Core.Compute.ComputeDevice.Cpu });
    private readonly List<LoraAdapter> _adapters = Skills.Select(s => PeftAdapterReader.Read(Path.Combine(Fixtures.Skillbench, "adapters", s))).ToList();
    private readonly string _folder = Directory.CreateTempSubdirectory("loralego-search-").FullName;

    // The first rows of each skill's file, one file per skill as users have them.
    private string[] Subsample(string split, int rowsPerSkill) => Skills.Select(skill =>
    {
        string path = Path.Combine(_folder, $"{split}-{rowsPerSkill}-{skill}.jsonl");
        File.WriteAllLines(path, File.ReadLines(Path.Combine(Fixtures.Skillbench, split, skill + ".jsonl")).Take(rowsPerSkill));
        return path;
    }).ToArray();

    private double LossOn(LoraAdapter merged, IEnumerable<string> files)
    {
        _model.Attach(merged);
        try
        {
            var results = files.Select(f => PerplexityEvaluator.Evaluate(_model, f, new EvaluationOptions { BatchSize = 64 })).ToList();
            return results.Sum(r => r.Loss * r.Tokens) / results.Sum(r => r.Tokens);
        }
        finally
        {
            _model.Detach(merged.Name);
        }
    }

    [Fact]
    public void The_same_seed_gives_the_same_search_and_the_same_merged_tensors()
    {
        var data = Subsample("train", 12);
        var options = new MergeSearchOptions { Methods = [MergeMethod.Cat], Budget = 4, Epochs = 1, Seed = 7 };
        var first = MergeSearch.Run(_model, _adapters, data, options);
        var second = MergeSearch.Run(_model, _adapters, data, options);
        Assert.Equal(first.History.Select(s => (s.Settings, s.TuneLoss, s.ValidationLoss)), second.History.Select(s => (s.Settings, s.TuneLoss, s.ValidationLoss)));
        Assert.Equal(first.Adapter.Modules.Select(m => m.Key), second.Adapter.Modules.Select(m => m.Key));
        foreach (var (a, b) in first.Adapter.Modules.Zip(second.Adapter.Modules))
        {
            Assert.Equal(a.A.ToArray(), b.A.ToArray());
            Assert.Equal(a.B.ToArray(), b.B.ToArray());
            Assert.Equal(a.Scaling, b.Scaling);
        }
        Assert.Equal(4, first.History.Count);
        Assert.Contains(first.History, s => s.Stage == "module scales");
    }

    [Fact]
    public void The_result_is_never_worse_on_the_tuning_data_than_the_best_starting_point()
    {
        var data = Subsample("train", 12);
        var result = MergeSearch.Run(_model, _adapters, data, new MergeSearchOptions { Budget = 4, Epochs = 1, Seed = 3 });
        var starts = result.History.Where(s => s.Stage == "start").ToList();
        Assert.Equal(["Lego", "Cat"], starts.Select(s => s.Candidate.MethodName));
        double resultLoss = LossOn(result.Adapter, data);
        foreach (var start in starts)
        {
            double startLoss = LossOn(CandidateMerger.Merge(start.Candidate, _adapters, "start", 0, default), data);
            Assert.True(resultLoss <= startLoss + 1e-6, $"result {resultLoss} is worse than the start {start.Settings} at {startLoss}");
        }
        Assert.Equal("optimize", result.Adapter.Provenance!["method"]!.GetValue<string>());
        Assert.Equal(result.Best.MethodName.ToLowerInvariant() == "lego" ? "lego" : result.Best.Method!.Value.PeftName(),
            result.Adapter.Provenance!["choice"]!["method"]!.GetValue<string>());
    }

    [Fact]
    public void On_skillbench_the_search_beats_cat_with_weights_a_quarter_on_held_out_rows()
    {
        var tune = Subsample("train", 48);
        var heldOut = Subsample("eval", 48);
        var result = MergeSearch.Run(_model, _adapters, tune, new MergeSearchOptions { Methods = [MergeMethod.Cat], Budget = 5, Epochs = 1, Seed = 1 });
        var cat = StandardMerge.Merge(_adapters.Select(a => new MergeInput(a, 0.25)).ToList(), MergeMethod.Cat, new MergeOptions { Name = "cat" });
        double catLoss = LossOn(cat, heldOut), searched = LossOn(result.Adapter, heldOut);
        Assert.True(searched < catLoss - 0.2, $"searched {searched} vs cat 1/N {catLoss}");
    }

    [Fact]
    public void A_lego_search_tries_settings_and_module_scales_and_keeps_the_lego_record_under_merge()
    {
        var data = Subsample("train", 6);
        var result = MergeSearch.Run(_model, _adapters, data, new MergeSearchOptions { Methods = [null], Budget = 3, Epochs = 1 });
        Assert.Equal(["start", "settings", "module scales"], result.History.Select(s => s.Stage));
        Assert.Equal(8, result.History[1].Candidate.Lego.Clustering.K);
        Assert.All(result.History, s => Assert.Null(s.Candidate.Method));
        var record = result.Adapter.Provenance!;
        Assert.Equal("optimize", record["method"]!.GetValue<string>());
        Assert.Equal("lego", record["merge"]!["method"]!.GetValue<string>());
        Assert.Equal("lego", record["choice"]!["method"]!.GetValue<string>());
    }

    [Fact]
    public void Cancelling_returns_the_best_merge_so_far_marked_cancelled()
    {
        var data = Subsample("train", 6);
        using var cancel = new CancellationTokenSource();
        var result = MergeSearch.Run(_model, _adapters, data, new MergeSearchOptions { Methods = [MergeMethod.Cat], Budget = 10, Epochs = 1 },
            progress: step => { if (step.Evaluation == 2) cancel.Cancel(); }, cancellationToken: cancel.Token);
        Assert.True(result.Cancelled);
        Assert.Equal(2, result.History.Count);
        Assert.Equal(result.History.Where(s => s.IsBest).Last().Candidate, result.Best);
        Assert.True(result.Adapter.Provenance!["cancelled"]!.GetValue<bool>());
    }

    [Fact]
    public void Bad_input_is_an_error_naming_the_file_or_the_parameter()
    {
        var missing = Path.Combine(_folder, "missing.jsonl");
        var notFound = Assert.Throws<LoraException>(() => MergeSearch.Run(_model, _adapters, [missing]));
        Assert.Equal(LoraErrorKind.NotFound, notFound.Kind);
        Assert.Contains(missing, notFound.Message);
        var data = Subsample("train", 2);
        var budget = Assert.Throws<LoraException>(() => MergeSearch.Run(_model, _adapters, data, new MergeSearchOptions { Budget = 2 }));
        Assert.Contains("budget of 2", budget.Message);
        var device = Assert.Throws<LoraException>(() => MergeSearch.Run(_model, _adapters, data, new MergeSearchOptions { Device = Core.Compute.ComputeDevice.Cuda }));
        Assert.Contains("load the model on Cuda", device.Message);
        var one = Assert.Throws<LoraException>(() => MergeSearch.Run(_model, _adapters.Take(1).ToList(), data));
        Assert.Contains("two or more adapters", one.Message);
        _model.Attach(_adapters[0]);
        var attached = Assert.Throws<LoraException>(() => MergeSearch.Run(_model, _adapters, data));
        Assert.Contains("detach them first", attached.Message);
    }

    public void Dispose()
    {
        _model.Dispose();
        Directory.Delete(_folder, recursive: true);
    }
}
