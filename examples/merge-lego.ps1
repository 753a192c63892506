# The main job: merge the bundled adapters a and b with LoRA-LEGO, step by step and in one call,
# export the merge as a PEFT adapter, and compare it with PEFT's merges of the same adapters by
# their loss on the two domains a and b stand for (rows sampled from the tiny Llama with each).
# Then the same comparison where merges differ: skillbench's four skill adapters, scored by
# answer-only loss and exact match.
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

# skillbench: four skill adapters of a tiny Llama, each exact on its own skill. Answer-only loss
# and exact match on the first 128 eval rows of each skill (docs/merge-quality.md has every row,
# Optimize-LoraMerge and the mixture, which routes each row to its skill's expert).
$skillbench = "$PSScriptRoot/../tests/fixtures/skillbench"
$skills = 'swap', 'complement', 'increment', 'descend'
$experts = Import-Lora ($skills | ForEach-Object { "$skillbench/adapters/$_" })
$evalDir = Join-Path $OutDir 'skillbench-eval'
$null = New-Item -ItemType Directory -Force $evalDir
foreach ($skill in $skills) { Get-Content "$skillbench/eval/$skill.jsonl" -TotalCount 128 | Set-Content "$evalDir/$skill.jsonl" }
$skillModel = Import-BaseModel "$skillbench/base" -Device Cpu
$merges = [ordered]@{
    'Merge-Lora, no options (the mean)' = $experts | Merge-Lora
    'Lego at the input rank (-Rank 8)'  = $experts | Merge-Lora -Rank 8 -Seed 1
    'PEFT linear, weights 1/4'          = $experts | Merge-Lora -Method Linear -Weight 0.25, 0.25, 0.25, 0.25
    'PEFT cat, weights 1/4'             = $experts | Merge-Lora -Method Cat -Weight 0.25, 0.25, 0.25, 0.25
    'PEFT ties_svd, density 0.5'        = $experts | Merge-Lora -Method TiesSvd -Density 0.5 -DenseSvd
}
$scored = foreach ($name in $merges.Keys) {
    $scores = foreach ($skill in $skills) { Measure-LoraModel -Model $skillModel -Adapter $merges[$name] -Data "$evalDir/$skill.jsonl" }
    [pscustomobject]@{ Merge = $name; Rank = $merges[$name].Rank; Loss = ($scores.Loss | Measure-Object -Average).Average; Exact = ($scores.ExactMatch | Measure-Object -Average).Average }
}
# Lower loss is better; no merge of four conflicting skills gets a whole answer right.
$scored | Format-Table -AutoSize Merge, Rank,
    @{ n = 'Answer loss'; e = { '{0:F3}' -f $_.Loss }; a = 'right' },
    @{ n = 'Exact match'; e = { '{0:F2}' -f $_.Exact }; a = 'right' }
