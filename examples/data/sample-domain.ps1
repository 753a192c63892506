# Writes token sequences sampled from the bundled tiny Llama with one adapter attached: the
# "domain" that adapter stands for. Used to make tiny-llama-domain-*.jsonl; deterministic for a seed.
param(
    [string] $Adapter = 'a',
    [int] $Rows = 24,
    [int] $Length = 24,
    [int] $Seed = 5,
    [string] $Fixture = "$PSScriptRoot/../../tests/fixtures/peft-tiny-llama",
    [string] $Out = "$PSScriptRoot/tiny-llama-domain-$Adapter.jsonl"
)
Import-Module "$PSScriptRoot/../../LoraLego.psd1"

$model = Import-BaseModel "$Fixture/base" -Device Cpu
Import-Lora "$Fixture/adapters/$Adapter" | Mount-Lora -Model $model
$random = [Random]::new($Seed)
$lines = foreach ($row in 1..$Rows) {
    $ids = [Collections.Generic.List[int]]::new()
    $ids.Add($random.Next(3, 256))
    while ($ids.Count -lt $Length) {
        $logits = Invoke-BaseModel -Model $model -InputIds (, $ids.ToArray())
        $last = $ids.Count - 1
        $weights = [double[]]::new($logits.VocabSize)
        $max = [double]::NegativeInfinity
        for ($t = 0; $t -lt $weights.Length; $t++) { $max = [Math]::Max($max, $logits[0, $last, $t]) }
        $sum = 0.0
        for ($t = 0; $t -lt $weights.Length; $t++) { $weights[$t] = [Math]::Exp($logits[0, $last, $t] - $max); $sum += $weights[$t] }
        $u = $random.NextDouble() * $sum
        $next = 0
        while ($next -lt $weights.Length - 1 -and $u -gt $weights[$next]) { $u -= $weights[$next]; $next++ }
        $ids.Add($next)
    }
    '{"input_ids": [' + ($ids -join ', ') + ']}'
}
[IO.File]::WriteAllLines($Out, [string[]]$lines)
"$Rows rows of $Length tokens from the base model with adapter $Adapter -> $Out"
