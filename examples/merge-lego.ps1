# The main job: merge the bundled adapters a and b with LoRA-LEGO, step by step and in one call,
# export the merge as a PEFT adapter, and compare it with PEFT's merges of the same adapters by
# their loss on the two domains a and b stand for (rows sampled from the tiny Llama with each).
param(
    [string] $OutDir = "$PSScriptRoot/../out"
)
Import-Module "$PSScriptRoot/../LoraLego.psd1"
$fixture = "$PSScriptRoot/../tests/fixtures/peft-tiny-llama"
$a, $b = Import-Lora "$fixture/adapters/a", "$fixture/adapters/b"

# Step by step: units out, clusters per module, merged adapter back, written as a PEFT folder.
$clusters = $a, $b | Split-Msu | Invoke-RankCluster -K 8 -Seed 1
$clusters.Where{ $_.ModuleKey -like '*layers.0.*' } | Out-Host
$lego = $clusters | Merge-Lora -Name lego-ab
$lego | Export-Lora "$OutDir/lego-ab" -Force -PassThru | Out-Host

# The same in one call; the seed makes it reproducible.
$again = $a, $b | Merge-Lora -Method Lego -Rank 8 -Seed 1 -Name lego-ab-2
'one call equals step by step: ' + (($again.Modules[0].A.ToArray() -join ',') -eq ($lego.Modules[0].A.ToArray() -join ','))

# PEFT's merges of the same two adapters; weights 0.5 each make them means, as Lego's default target is.
$candidates = @(
    $a
    $b
    $lego
    $a, $b | Merge-Lora -Method Linear -Weight 0.5, 0.5 -Name linear-ab
    $a, $b | Merge-Lora -Method Cat -Weight 0.5, 0.5 -Name cat-ab
    $a, $b | Merge-Lora -Method Svd -Weight 0.5, 0.5 -Rank 8 -Name svd-ab
    $a, $b | Merge-Lora -Method TiesSvd -Density 0.5 -Rank 8 -Name ties-svd-ab
)
$model = Import-BaseModel "$fixture/base" -Device Cpu
$domainA = "$PSScriptRoot/data/tiny-llama-domain-a.jsonl"
$domainB = "$PSScriptRoot/data/tiny-llama-domain-b.jsonl"
$base = [pscustomobject]@{ Name = 'base model'; Rank = 0; LossA = (Measure-LoraModel -Model $model -Data $domainA).Loss; LossB = (Measure-LoraModel -Model $model -Data $domainB).Loss }
$rows = @($base) + @(foreach ($candidate in $candidates) {
    [pscustomobject]@{
        Name  = $candidate.Name
        Rank  = $candidate.Rank
        LossA = (Measure-LoraModel -Model $model -Adapter $candidate -Data $domainA).Loss
        LossB = (Measure-LoraModel -Model $model -Adapter $candidate -Data $domainB).Loss
    }
})
# Lower is better: mean token loss in nats on each domain, and the mean of the two.
$rows | Format-Table -AutoSize Name, Rank,
    @{ n = 'Loss on A'; e = { '{0:F4}' -f $_.LossA }; a = 'right' },
    @{ n = 'Loss on B'; e = { '{0:F4}' -f $_.LossB }; a = 'right' },
    @{ n = 'Mean loss'; e = { '{0:F4}' -f (($_.LossA + $_.LossB) / 2) }; a = 'right' }
