using System.Management.Automation;
using System.Text.Json.Nodes;
using LoraLego.Module.Tests.Hosting;

namespace LoraLego.Module.Tests;

[Collection(SessionCollection.Name)]
public class BaseModelTests(PowerShellSession ps)
{
    private const string Setup = """
        $tiny = [IO.Path]::Combine($Fixtures, 'peft-tiny-llama')
        $model = Import-BaseModel "$tiny/base" -Device Cpu

        """;

    private static readonly Dictionary<string, byte[]> Golden =
        SafetensorsBytes.TensorBytes(Path.Combine(Paths.PeftTinyLlama, "golden_logits.safetensors"));

    private static int[][] InputIds()
    {
        var bytes = Golden["input_ids"];
        return Enumerable.Range(0, 2).Select(r => Enumerable.Range(0, 16).Select(c => (int)BitConverter.ToInt64(bytes, (r * 16 + c) * 8)).ToArray()).ToArray();
    }

    private static float[] GoldenLogits(string name) =>
        Enumerable.Range(0, Golden[name].Length / 4).Select(i => BitConverter.ToSingle(Golden[name], i * 4)).ToArray();

    private float[] Logits(string script)
    {
        var result = ps.Run(Setup + script + "\n, $logits.ToArray()", new Dictionary<string, object?> { ["ids"] = InputIds() });
        result.AssertNoErrors();
        return (float[])result.Output.Last().BaseObject;
    }

    private static void AssertClose(float[] expected, float[] actual, double tolerance = 1e-4)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        Assert.True(worst < tolerance, $"max abs error {worst}");
    }

    [Fact]
    public void Imported_model_describes_itself()
    {
        var result = ps.Run(Setup + "$model.Architecture; $model.Config.LayerCount; $model.ParameterCount");
        result.AssertNoErrors();
        Assert.Equal(["LlamaForCausalLM", "2"], result.Output.Take(2).Select(o => o.ToString()));
        string table = ps.Render(Setup + "$model");
        Assert.Matches(@"LlamaForCausalLM\s+2\s+64", table);
    }

    [Fact]
    public void Logits_match_transformers_for_the_base_and_with_an_adapter_for_one_call()
    {
        AssertClose(GoldenLogits("base"), Logits("$logits = Invoke-BaseModel -Model $model -InputIds $ids"));
        AssertClose(GoldenLogits("adapter/a"), Logits("$logits = Invoke-BaseModel -Model $model -InputIds $ids -Adapter (Import-Lora \"$tiny/adapters/a\")"));
        // The adapter of a call is detached after it: the same model then gives the base logits.
        AssertClose(GoldenLogits("base"), Logits("""
            $null = Invoke-BaseModel -Model $model -InputIds $ids -Adapter (Import-Lora "$tiny/adapters/a")
            if ($model.Adapters.Count -ne 0) { throw 'adapter left attached' }
            $logits = Invoke-BaseModel -Model $model -InputIds $ids
            """));
    }

    [Fact]
    public void Mounted_adapters_merged_or_not_match_peft_and_dismount_restores_the_base()
    {
        AssertClose(GoldenLogits("merge/cat_abc"), Logits("""
            Import-Lora "$tiny/adapters/a", "$tiny/adapters/b", "$tiny/adapters/c" | Mount-Lora -Model $model -Weight 0.5, 0.3, 0.2
            $logits = Invoke-BaseModel -Model $model -InputIds $ids
            """));
        AssertClose(GoldenLogits("adapter/d"), Logits("""
            Import-Lora "$tiny/adapters/d" | Mount-Lora -Model $model -Merge
            $logits = Invoke-BaseModel -Model $model -InputIds $ids
            """));
        var restored = Logits("""
            Import-Lora "$tiny/adapters/a" | Mount-Lora -Model $model -Merge -PassThru | Out-Null
            Dismount-Lora -Model $model -Name a
            $logits = Invoke-BaseModel -Model $model -InputIds $ids
            """);
        var base_ = Logits("$logits = Invoke-BaseModel -Model $model -InputIds $ids");
        Assert.Equal(base_, restored);
    }

    [Fact]
    public void Measure_gives_the_cross_entropy_of_the_logits()
    {
        string data = Path.Combine(ps.Scratch, "rows.jsonl");
        File.WriteAllLines(data, InputIds().Select(r => new JsonObject { ["input_ids"] = new JsonArray(r.Select(t => (JsonNode)t).ToArray()) }.ToJsonString()));
        var result = ps.Run(Setup + "Measure-LoraModel -Model $model -Data $data -BatchSize 1; Measure-LoraModel -Model $model -Data $data -Adapter (Import-Lora \"$tiny/adapters/b\")",
            new Dictionary<string, object?> { ["data"] = data });
        result.AssertNoErrors();
        var baseline = result.Output[0];
        Assert.Equal(30L, baseline.Properties["Tokens"].Value);
        Assert.Equal(ExpectedLoss(GoldenLogits("base")), (double)baseline.Properties["Loss"].Value, 4);
        Assert.Equal(ExpectedLoss(GoldenLogits("adapter/b")), (double)result.Output[1].Properties["Loss"].Value, 4);
        Assert.Equal(Math.Exp((double)baseline.Properties["Loss"].Value), (double)baseline.Properties["Perplexity"].Value, 9);
    }

    [Fact]
    public void A_one_expert_mixture_measures_like_its_adapter()
    {
        string data = Path.Combine(Paths.Root, "examples", "data", "tiny-llama-domain-a.jsonl");
        var result = ps.Run(Setup + """
            $a = Import-Lora "$tiny/adapters/a"
            (Measure-LoraModel -Model $model -Data $data -Adapter $a).Loss
            (Measure-LoraModel -Model $model -Data $data -Mixture (New-LoraMixture -Adapter $a)).Loss
            $model.Adapters.Count
            """, new Dictionary<string, object?> { ["data"] = data });
        result.AssertNoErrors();
        Assert.Equal((double)result.Output[0].BaseObject, (double)result.Output[1].BaseObject, 6);
        Assert.Equal(0, result.Output[2].BaseObject);
    }

    [Fact]
    public void Text_rows_are_tokenized_with_the_model_folders_tokenizer()
    {
        string folder = Path.Combine(ps.Scratch, "tiny-with-tokenizer");
        Directory.CreateDirectory(folder);
        foreach (var file in Directory.GetFiles(Path.Combine(Paths.PeftTinyLlama, "base")))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)), overwrite: true);
        File.Copy(Path.Combine(Paths.Fixtures, "tiny-tokenizer", "sentencepiece", "tokenizer.model"), Path.Combine(folder, "tokenizer.model"), overwrite: true);
        string data = Path.Combine(ps.Scratch, "text.jsonl");
        File.WriteAllLines(data, ["""{"text": "merging adapters like lego bricks"}""", """{"text": "a mixture of experts"}"""]);
        var result = ps.Run("Measure-LoraModel -Model (Import-BaseModel $folder -Device Cpu) -Data $data",
            new Dictionary<string, object?> { ["folder"] = folder, ["data"] = data });
        result.AssertNoErrors();
        var measured = result.Output.Single();
        Assert.Equal(2, measured.Properties["Rows"].Value);
        Assert.True((long)measured.Properties["Tokens"].Value > 4);
        Assert.True(double.IsFinite((double)measured.Properties["Loss"].Value));
    }

    [Fact]
    public void Ctrl_C_stops_a_measurement_between_batches()
    {
        string data = Path.Combine(ps.Scratch, "long.jsonl");
        var row = new JsonObject { ["input_ids"] = new JsonArray(Enumerable.Range(1, 64).Select(t => (JsonNode)t).ToArray()) }.ToJsonString();
        File.WriteAllLines(data, Enumerable.Repeat(row, 50_000));
        var took = ps.RunAndStop(Setup + "Measure-LoraModel -Model $model -Data $data -BatchSize 4", TimeSpan.FromSeconds(1.5),
            new Dictionary<string, object?> { ["data"] = data });
        // A guard against a stop that never comes, not a timing: the stop is checked between batches of milliseconds.
        Assert.True(took < TimeSpan.FromSeconds(10), $"stopping took {took}");
        Console.WriteLine($"Measure-LoraModel stopped {took.TotalMilliseconds:F0} ms after Stop()");
        ps.Run("'the session still works'").AssertNoErrors();
    }

    private static double ExpectedLoss(float[] logits)
    {
        var ids = InputIds();
        double total = 0;
        int count = 0;
        for (int r = 0; r < 2; r++)
            for (int p = 0; p < 15; p++)
            {
                var row = logits.AsSpan((r * 16 + p) * 256, 256);
                double max = double.NegativeInfinity;
                foreach (var v in row)
                    max = Math.Max(max, v);
                double sum = 0;
                foreach (var v in row)
                    sum += Math.Exp(v - max);
                total += max + Math.Log(sum) - row[ids[r][p + 1]];
                count++;
            }
        return total / count;
    }

    [Fact]
    public void Unsupported_architecture_and_missing_folder_are_categorised_errors()
    {
        string folder = Path.Combine(ps.Scratch, "gpt2");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), """{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}""");
        var unsupported = Assert.Single(ps.Run("Import-BaseModel $f", new Dictionary<string, object?> { ["f"] = folder }).Errors);
        Assert.Equal(ErrorCategory.NotImplemented, unsupported.CategoryInfo.Category);
        Assert.Contains("GPT2LMHeadModel", unsupported.Exception.Message);
        var missing = Assert.Single(ps.Run("Import-BaseModel ([IO.Path]::Combine($Scratch, 'nope'))").Errors);
        Assert.Equal(ErrorCategory.ObjectNotFound, missing.CategoryInfo.Category);
    }

    [Fact]
    public void Dismounting_an_adapter_that_is_not_attached_is_an_error()
    {
        var error = Assert.Single(ps.Run(Setup + "Dismount-Lora -Model $model -Name math").Errors);
        Assert.Equal(ErrorCategory.ObjectNotFound, error.CategoryInfo.Category);
    }
}
