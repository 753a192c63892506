# Optimize-LoraMerge: a merge chosen on data, its history, and its errors.
BeforeAll {
    . $PSScriptRoot/Common.ps1
    $skillbench = "$RepoRoot/tests/fixtures/skillbench"
    # Two skills' first rows, one file per skill, passed as a wildcard.
    $data = New-Item -ItemType Directory -Force TestDrive:/optimize-data
    foreach ($skill in 'swap', 'complement') {
        Get-Content "$skillbench/train/$skill.jsonl" -TotalCount 6 | Set-Content "$data/$skill.jsonl"
    }
    $model = Import-BaseModel "$skillbench/base" -Device Cpu
    $adapters = Import-Lora "$skillbench/adapters/swap", "$skillbench/adapters/complement"
}

Describe 'Optimize-LoraMerge' {
    It 'emits the merged adapter with its search history and records the choice' {
        $best = $adapters | Optimize-LoraMerge -Model $model -Data "$data/*.jsonl" -Method Cat -Budget 3 -Epochs 1 -Seed 2
        $best.Name | Should -Be 'optimized'
        $best.SearchHistory.Count | Should -Be 3
        $best.SearchHistory.Where{ $_.IsBest }[-1].Stage | Should -BeIn 'start', 'weights', 'module scales'
        $best.Provenance['method'].GetValue[string]() | Should -Be 'optimize'
        $model.Adapters.Count | Should -Be 0
        $table = $best.SearchHistory | Out-String -Width 250
        $table | Should -BeLike '*ValidLoss*'
        $table | Should -BeLike '*Cat w=`[0.500, 0.500`]*'
    }

    It 'reports a missing data file with LoraLego.NotFound, naming it' {
        { $adapters | Optimize-LoraMerge -Model $model -Data "$data/none-such.jsonl" -ErrorAction Stop } |
            Should -Throw -ErrorId 'LoraLego.NotFound,LoraLego.Commands.OptimizeLoraMergeCommand' -ExpectedMessage '*none-such.jsonl*'
    }
}
