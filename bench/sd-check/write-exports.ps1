# Writes what bench/sd-check/check.py loads with diffusers' own converter on the GPU machine (this one has
# no torch): kohya and diffusers exports of the Stable Diffusion fixtures, converted both ways, and a merge.
# Run from the repository root: dotnet pwsh ./bench/sd-check/write-exports.ps1, then check.py there with sdcheck/ carried.
Import-Module ./LoraLego.psd1
$sd = './tests/fixtures/sd'
Import-Lora "$sd/sdxl-diffusers" | Export-Lora ./sdcheck/sdxl-from-diffusers.safetensors -Format Kohya -Force
Import-Lora "$sd/sdxl-kohya.safetensors" | Export-Lora ./sdcheck/sdxl-from-kohya -Format Diffusers -Force
$merged = Import-Lora "$sd/sd15-kohya.safetensors", "$sd/sd15-kohya-b.safetensors" | Merge-Lora -Method Svd -Rank 6 -Name sd15-merged
$merged | Export-Lora ./sdcheck/sd15-merged.safetensors -Format Kohya -Force
$merged | Export-Lora ./sdcheck/sd15-merged-diffusers -Format Diffusers -Force
