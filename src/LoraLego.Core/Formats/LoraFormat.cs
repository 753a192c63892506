namespace LoraLego.Core.Formats;

/// <summary>The file formats LoraLego reads and writes adapters in.</summary>
public enum LoraFormat
{
    /// <summary>A PEFT folder: adapter_model.safetensors and adapter_config.json.</summary>
    Peft,

    /// <summary>kohya sd-scripts' single .safetensors file (A1111, ComfyUI).</summary>
    Kohya,

    /// <summary>diffusers' pytorch_lora_weights.safetensors.</summary>
    Diffusers,
}
