# Writes what bench/peft-check/check.py loads with transformers and PEFT: a base model with adapter a
# baked in (Export-BaseModel), a Lego merge, a TIES-SVD merge and a resized adapter with rank_pattern.
# Run from the repository root; the GPU machine has transformers and PEFT, this one does not:
#   dotnet pwsh ./bench/peft-check/write-exports.ps1, then run check.py there with devcheck/ carried.
Import-Module ./LoraLego.psd1
$tiny = './tests/fixtures/peft-tiny-llama'
$model = Import-BaseModel "$tiny/base"
Mount-Lora -Model $model -Adapter (Import-Lora "$tiny/adapters/a") -Merge
Export-BaseModel ./devcheck/baked -Model $model
Import-Lora "$tiny/adapters/a", "$tiny/adapters/b", "$tiny/adapters/c" | Merge-Lora -Rank 8 -Seed 1 -Name lego | Export-Lora ./devcheck/lego
Import-Lora "$tiny/adapters/a", "$tiny/adapters/c" | Resize-Lora -Energy 0.9 | Select-Object -First 1 | Export-Lora ./devcheck/resized
Import-Lora "$tiny/adapters/a", "$tiny/adapters/b" | Merge-Lora -Method TiesSvd -Density 0.5 | Export-Lora ./devcheck/ties
