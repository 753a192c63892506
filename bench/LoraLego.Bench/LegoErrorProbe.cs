using LoraLego.Core.Clustering;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;
using static TorchSharp.torch;

namespace LoraLego.Bench;

internal static class LegoErrorProbe
{
    public static void Run(string setFolder)
    {
        var skills = Directory.GetFiles(Path.Combine(setFolder, "eval"), "*.jsonl").Select(Path.GetFileNameWithoutExtension).ToArray();
        var adapters = skills.Select(s => PeftAdapterReader.Read(Path.Combine(setFolder, "adapters", s!))).ToList();
        var inputs = adapters.Select(a => new MergeInput(a, 1.0 / adapters.Count)).ToList();
        var cat = StandardMerge.Merge(inputs, MergeMethod.Cat);
        var catDeltas = cat.Modules.ToDictionary(m => m.Key, m => m.Delta());
        foreach (bool pr in new[] { false, true })
            foreach (int k in new[] { 4, 8, 12, 16, 20, 24, 28 })
            {
                var lego = LegoMerge.Merge(inputs, new LegoOptions { Clustering = new RankClusterOptions { K = k }, ParameterReweight = pr, OutputReweight = false, Target = LegoTarget.Sum });
                var errors = lego.Modules.Select(m =>
                {
                    var d = m.Delta();
                    var t = catDeltas[m.Key];
                    return (d - t).norm().item<float>() / t.norm().item<float>();
                }).ToList();
                var ratio = lego.Modules.Select(m => m.Delta().norm().item<float>() / catDeltas[m.Key].norm().item<float>()).Average();
                Console.WriteLine($"{Path.GetFileName(setFolder)} pr {pr} k {k}: mean rel error {errors.Average():F3} (min {errors.Min():F3} max {errors.Max():F3}), norm ratio {ratio:F3}");
            }
        // Same-index alignment of A rows across adapters (a shared initialisation shows here).
        var m0 = adapters.Select(a => a.Modules.First()).ToList();
        var a0 = nn.functional.normalize(m0[0].A.LoadFloat32(), dim: 1);
        var a1 = nn.functional.normalize(m0[1].A.LoadFloat32(), dim: 1);
        Console.WriteLine($"{Path.GetFileName(setFolder)} first module: mean |cos| of same-index A rows of adapters 0 and 1: {a0.mul(a1).sum(1).abs().mean().item<float>():F3}");
    }
}
