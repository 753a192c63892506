# Import the bundled sample adapters, look inside them, and export one as bfloat16.
param(
    [string] $AdapterRoot = "$PSScriptRoot/../tests/fixtures/peft-tiny-llama/adapters",
    [string] $OutDir = "$PSScriptRoot/../out"
)
Import-Module "$PSScriptRoot/../LoraLego.psd1"

$adapters = Import-Lora "$AdapterRoot/*"
$adapters

# The modules of one adapter, read from the safetensors header only: no weights are loaded.
$adapters[0].Modules.Where{ $_.Key -like '*layers.0.*' }.ForEach{ '{0,-34} r{1} scaling {2} A {3} B {4}' -f $_.Key, $_.Rank, $_.Scaling, $_.A, $_.B }

# rsLoRA adapters scale by alpha/sqrt(r): compare the scalings.
$adapters.ForEach{ '{0}: scaling {1:G4} (r {2}, alpha {3}, rsLoRA {4})' -f $_.Name, $_.Modules[0].Scaling, $_.Rank, $_.Alpha, $_.UseRsLora }

$adapters[0] | Export-Lora -Path "$OutDir/$($adapters[0].Name)-bf16" -DType BFloat16 -Force -PassThru
