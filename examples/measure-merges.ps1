# Load the bundled tiny Llama, and measure what merging adapters a and b does to its loss on
# data sampled from the model with adapter a: the adapter itself, PEFT's merges and LoRA-LEGO.
param(
    [string] $Fixture = "$PSScriptRoot/../tests/fixtures/peft-tiny-llama",
    [string] $Data = "$PSScriptRoot/data/tiny-llama-domain-a.jsonl"
)
Import-Module "$PSScriptRoot/../LoraLego.psd1"

$model = Import-BaseModel "$Fixture/base" -Device Cpu
$model

$a = Import-Lora "$Fixture/adapters/a"
$b = Import-Lora "$Fixture/adapters/b"
$candidates = @(
    $a
    $b
    $a, $b | Merge-Lora -Method Linear -Weight 0.5, 0.5 -Name linear-ab
    $a, $b | Merge-Lora -Method Cat -Weight 0.5, 0.5 -Name cat-ab
    $a, $b | Merge-Lora -Method Lego -Rank 8 -Name lego-ab
)

# No adapter first, then each candidate attached for the measurement only.
$baseline = Measure-LoraModel -Model $model -Data $Data
'{0,-10} loss {1:F4}  perplexity {2:F2}' -f 'base', $baseline.Loss, $baseline.Perplexity
foreach ($candidate in $candidates) {
    $r = Measure-LoraModel -Model $model -Adapter $candidate -Data $Data
    '{0,-10} loss {1:F4}  perplexity {2:F2}' -f $candidate.Name, $r.Loss, $r.Perplexity
}
