# A mixture of LoRA experts (MoLE): adapters a and b stay separate, and a gate learns, per row
# (from its prompt, or from its tokens so far when it has no labels), how much of each to use. Train the gates on both domains, see where they
# route, mask an expert, save the mixture and read it back.
param(
    [string] $OutDir = "$PSScriptRoot/../out",
    [string] $Fixture = "$PSScriptRoot/../tests/fixtures/peft-tiny-llama",
    [string] $DataA = "$PSScriptRoot/data/tiny-llama-domain-a.jsonl",
    [string] $DataB = "$PSScriptRoot/data/tiny-llama-domain-b.jsonl"
)
Import-Module "$PSScriptRoot/../LoraLego.psd1"
# The .NET file calls below resolve against the process folder, not the PowerShell location.
$OutDir = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($OutDir)

$model = Import-BaseModel "$Fixture/base" -Device Cpu
$mixture = Import-Lora "$Fixture/adapters/a", "$Fixture/adapters/b" | New-LoraMixture -Name mole-ab

# The gates learn from the union of the domains.
$null = [IO.Directory]::CreateDirectory($OutDir)
$union = [IO.Path]::Combine($OutDir, 'union.jsonl')
[IO.File]::WriteAllLines($union, [string[]]([IO.File]::ReadAllLines($DataA) + [IO.File]::ReadAllLines($DataB)))
$mixture = Optimize-LoraMixture -Mixture $mixture -Model $model -Data $union -Epochs 2 -LearningRate 0.01 -BatchSize 8 -Seed 1
'trained {0} steps, last loss {1:F4}' -f $mixture.LossHistory.Count, $mixture.LossHistory[-1]

# Where the gates send each domain's rows: one line per file.
Get-LoraMixtureGate $mixture -Model $model -Data $DataA, $DataB

# Branch selection: with b masked, the gates renormalise over a alone.
Set-LoraMixture $mixture -Disable b
'enabled: {0}' -f ($mixture.EnabledExperts -join ', ')

$folder = [IO.Path]::Combine($OutDir, 'mole-ab')
$mixture | Export-LoraMixture $folder -Force
$imported = Import-LoraMixture $folder
'round trip keeps the mask and the history: {0}' -f (($imported.DisabledExperts -join ',') -eq 'b' -and $imported.LossHistory.Count -eq $mixture.LossHistory.Count)
$imported

# Gates can also read each expert's log-likelihood of the row so far (-GateInput Likelihood): for
# domains that share a vocabulary and differ in how they are written. Every pass first runs the
# model once per expert.
$byLikelihood = Import-Lora "$Fixture/adapters/a", "$Fixture/adapters/b" | New-LoraMixture -Name mole-ab-likelihood -GateInput Likelihood
$byLikelihood = Optimize-LoraMixture -Mixture $byLikelihood -Model $model -Data $union -Epochs 2 -LearningRate 0.05 -BatchSize 8 -Seed 1
foreach ($data in $DataA, $DataB) {
    $measured = Measure-LoraModel -Model $model -Mixture $byLikelihood -Data $data
    '{0}: loss {1:F4} with likelihood gates' -f [IO.Path]::GetFileNameWithoutExtension($data), $measured.Loss
}
