namespace LoraLego.Core.Formats.StableDiffusion;

/// <summary>The attention and MLP layers of a CLIP text encoder (transformers' CLIPTextModel), which LoRAs adapt.</summary>
internal static class ClipTextModules
{
    /// <param name="component">The pipeline component: text_encoder or text_encoder_2.</param>
    /// <param name="kohyaPrefix">lora_te (SD1.x), lora_te1 or lora_te2 (SDXL).</param>
    public static IEnumerable<SdModule> Build(string component, string kohyaPrefix, int layers, long hidden, long intermediate)
    {
        for (int i = 0; i < layers; i++)
        {
            string layer = $"text_model.encoder.layers.{i}";
            foreach (var projection in new[] { "q_proj", "k_proj", "v_proj", "out_proj" })
                yield return Module($"{layer}.self_attn.{projection}", hidden, hidden);
            yield return Module($"{layer}.mlp.fc1", hidden, intermediate);
            yield return Module($"{layer}.mlp.fc2", intermediate, hidden);
        }

        SdModule Module(string path, long input, long output) =>
            new($"{component}.{path}", $"{kohyaPrefix}_{path.Replace('.', '_')}", input, output, null);
    }
}
