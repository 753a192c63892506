# Merge the bundled adapters a, b and c with LoRA-LEGO, step by step and in one call, and export.
param(
    [string] $AdapterRoot = "$PSScriptRoot/../tests/fixtures/peft-tiny-llama/adapters",
    [string] $OutDir = "$PSScriptRoot/../out"
)

# Step by step: units out, clusters per module, merged adapter back, written as a PEFT folder.
$clusters = Import-Lora "$AdapterRoot/a", "$AdapterRoot/b", "$AdapterRoot/c" | Split-Msu | Invoke-RankCluster -K 8 -Seed 1
$clusters.Where{ $_.ModuleKey -like '*layers.0.*' } | Out-Default

$merged = $clusters | Merge-Lora -Name lego-abc
$merged | Export-Lora -Path "$OutDir/lego-abc" -Force -PassThru

# The same in one call; the seed makes it reproducible.
$again = Import-Lora "$AdapterRoot/a", "$AdapterRoot/b", "$AdapterRoot/c" | Merge-Lora -Method Lego -Rank 8 -Seed 1 -Name lego-abc-2
'one call equals step by step: ' + (($again.Modules[0].A.ToArray() -join ',') -eq ($merged.Modules[0].A.ToArray() -join ','))

# PEFT's merges, for comparison: the same adapters with TIES-SVD and the exact concatenation.
Import-Lora "$AdapterRoot/a", "$AdapterRoot/b", "$AdapterRoot/c" | Merge-Lora -Method TiesSvd -Density 0.5 -Rank 8 -Name ties-svd-abc
Import-Lora "$AdapterRoot/a", "$AdapterRoot/b", "$AdapterRoot/c" | Merge-Lora -Method Cat -Name cat-abc
