using System.Text.Json.Nodes;
using LoraLego.Core.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraLego.Bench;

/// <summary>
/// Writes seeded random PEFT adapters of a model's shapes, through the same streaming writer the
/// module uses, so benchmarks read real safetensors files of realistic size.
/// </summary>
public static class SyntheticAdapters
{
    public static IReadOnlyList<string> Generate(string folder, ModelShape shape, int count, int rank, SafetensorsDType dtype, long seed)
    {
        var paths = new List<string>();
        for (int i = 0; i < count; i++)
        {
            string dir = Path.Combine(folder, $"{shape.Name}-r{rank}-{dtype}-{i}");
            paths.Add(dir);
            if (File.Exists(Path.Combine(dir, PeftAdapterReader.ConfigFileName)))
                continue;
            var generator = torch.manual_seed(seed + i);
            var items = new List<SafetensorsWriteItem>();
            foreach (var (key, inF, outF) in shape.Modules())
            {
                // Kaiming-like A and a small nonzero B, the magnitudes of a trained adapter.
                items.Add(new SafetensorsWriteItem($"base_model.model.{key}.lora_A.weight", dtype, [rank, inF],
                    () => torch.randn(rank, inF, generator: generator).mul_(1.0 / Math.Sqrt(inF))));
                items.Add(new SafetensorsWriteItem($"base_model.model.{key}.lora_B.weight", dtype, [outF, rank],
                    () => torch.randn(outF, rank, generator: generator).mul_(0.01)));
            }
            Directory.CreateDirectory(dir);
            SafetensorsWriter.Write(Path.Combine(dir, PeftAdapterReader.ModelFileName), items, new Dictionary<string, string> { ["format"] = "pt" });
            var config = new JsonObject
            {
                ["peft_type"] = "LORA",
                ["task_type"] = "CAUSAL_LM",
                ["base_model_name_or_path"] = $"synthetic-llama-{shape.Name}",
                ["r"] = rank,
                ["lora_alpha"] = 2 * rank,
                ["target_modules"] = new JsonArray("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
            };
            File.WriteAllText(Path.Combine(dir, PeftAdapterReader.ConfigFileName), config.ToJsonString());
        }
        return paths;
    }
}
