using System.Text.Json.Nodes;
using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;
using static TorchSharp.torch;

namespace LoraLego.Core.Tests.Merging;

/// <summary>One add_weighted_adapter call recorded in the fixture manifests.</summary>
public sealed record FixtureMerge(string Name, string[] Adapters, double[] Weights, MergeMethod Method, double? Density, int? SvdRank, MajoritySign? MajoritySign)
{
    /// <summary>
    /// PEFT's call as MergeOptions. The trimming methods (those with a density) take PEFT's full SVD (DenseSvd): the _svd forms' default randomized
    /// range finder approximates the rank-k subspace, which TrimmedSvdTests measures instead.
    /// </summary>
    public MergeOptions Options(Action<string>? verbose = null) => new()
    {
        Name = Name,
        Density = Density,
        Rank = SvdRank,
        MajoritySign = MajoritySign,
        DenseSvd = Density is not null,
        Verbose = verbose,
    };

    public IReadOnlyList<MergeInput> Inputs() =>
        Adapters.Zip(Weights, (a, w) => new MergeInput(MergeFixtures.Adapter(a), w)).ToList();
}

/// <summary>Reads the merge calls PEFT made for the fixtures, and compares effective deltas.</summary>
public static class MergeFixtures
{
    private static readonly Dictionary<string, LoraAdapter> Adapters = new();

    public static IReadOnlyList<FixtureMerge> All { get; } = Read("manifest.json").Concat(Read("manifest_extra.json")).ToList();

    public static FixtureMerge Get(string name) => All.Single(m => m.Name == name);

    public static IEnumerable<object[]> Names => All.Select(m => new object[] { m.Name });

    public static LoraAdapter Adapter(string name)
    {
        lock (Adapters)
        {
            if (!Adapters.TryGetValue(name, out var adapter))
                Adapters[name] = adapter = PeftAdapterReader.Read(Fixtures.Adapter(name));
            return adapter;
        }
    }

    /// <summary>
    /// PEFT's merged delta as PEFT meant it: a merge whose first input is rsLoRA keeps use_rslora with
    /// lora_alpha = r, so PEFT scales it by r / sqrt(r) where 1 was intended (fixtures README, "rsLoRA first").
    /// </summary>
    public static Dictionary<string, Tensor> IntendedDeltas(string mergeName)
    {
        string folder = Fixtures.Merge(mergeName);
        var config = AdapterConfig.Parse(File.ReadAllText(Path.Combine(folder, "adapter_config.json")), folder);
        double overscale = config.UseRsLora ? Math.Sqrt(config.R) : 1.0;
        return Fixtures.ReadDeltas(folder).ToDictionary(p => p.Key, p => p.Value.div(overscale));
    }

    /// <summary>||actual - expected||_F / ||expected||_F, in float64.</summary>
    public static double RelativeError(Tensor actual, Tensor expected)
    {
        using var a = actual.to(ScalarType.Float64);
        using var e = expected.to(ScalarType.Float64);
        using var diff = a - e;
        return diff.norm().item<double>() / e.norm().item<double>();
    }

    /// <summary>The worst per-module relative error between two adapters' effective deltas, which must cover the same modules.</summary>
    public static double WorstError(LoraAdapter actual, IReadOnlyDictionary<string, Tensor> expected)
    {
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Modules.Select(m => m.Key).Order(StringComparer.Ordinal));
        double worst = 0;
        foreach (var module in actual.Modules)
        {
            using var delta = module.Delta();
            worst = Math.Max(worst, RelativeError(delta, expected[module.Key]));
        }
        return worst;
    }

    public static Dictionary<string, Tensor> Deltas(LoraAdapter adapter) => adapter.Modules.ToDictionary(m => m.Key, m => m.Delta());

    private static IEnumerable<FixtureMerge> Read(string manifest)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.PeftTinyLlama, manifest)))!["merges"]!.AsObject();
        foreach (var (name, entry) in json)
        {
            if (entry!["ok"]!.GetValue<bool>() != true)
                continue;
            var call = entry["call"]!;
            yield return new FixtureMerge(
                name,
                call["adapters"]!.AsArray().Select(n => n!.GetValue<string>()).ToArray(),
                call["weights"]!.AsArray().Select(n => n!.GetValue<double>()).ToArray(),
                MergeMethods.FromPeftName(call["combination_type"]!.GetValue<string>()),
                call["density"]?.GetValue<double>(),
                call["svd_rank"]?.GetValue<int>(),
                call["majority_sign_method"]?.GetValue<string>() switch
                {
                    null => null,
                    "total" => MajoritySign.Total,
                    "frequency" => MajoritySign.Frequency,
                    var other => throw new InvalidDataException($"unknown majority_sign_method '{other}'"),
                });
        }
    }
}
