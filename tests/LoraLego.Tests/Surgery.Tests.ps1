# Resize-Lora, New-LoraFromModel and Export-BaseModel as users chain them; the updates are checked with the
# independent helper (Get-DeltaDifference), the optimality of the SVD in the Core tests.
BeforeAll {
    . $PSScriptRoot/Common.ps1
}

Describe 'Resize-Lora' {
    It 'gives <Name> back unchanged at its own rank' -ForEach @{ Name = 'a'; Rank = 8 }, @{ Name = 'c'; Rank = 4 }, @{ Name = 'd'; Rank = 16 } {
        $adapter = Import-Lora "$Adapters/$Name"
        $resized = $adapter | Resize-Lora -Rank $Rank
        Get-DeltaDifference $resized $adapter | Should -BeLessThan 1e-6
        $resized.RankChanges.NewRank | Sort-Object -Unique | Should -Be $Rank
    }

    It 'chooses ranks per module by energy, reports them, and exports patterns that read back to the same updates' {
        $resized = Import-Lora "$Adapters/d" | Resize-Lora -Energy 0.9 -Name d90
        $resized.Name | Should -Be d90
        $resized.RankChanges | ForEach-Object { $_.EnergyKept | Should -BeGreaterOrEqual 0.9 }
        ($resized.RankChanges.NewRank | Sort-Object -Unique).Count | Should -BeGreaterThan 1
        $resized | Export-Lora TestDrive:/d90
        $config = Get-Content -Raw TestDrive:/d90/adapter_config.json | ConvertFrom-Json -AsHashtable
        $config.rank_pattern.Count | Should -BeGreaterThan 0
        $config.ContainsKey('loralego') | Should -BeFalse
        (Import-Lora TestDrive:/d90).Provenance['operation'].GetValue[string]() | Should -Be resize
        Get-DeltaDifference (Import-Lora TestDrive:/d90) $resized | Should -BeLessThan 1e-6
    }

    It 'takes -Rank as the cap of a relative threshold' {
        $resized = Import-Lora "$Adapters/a" | Resize-Lora -RelativeThreshold 0 -Rank 3
        $resized.Modules.Rank | Sort-Object -Unique | Should -Be 3
    }

    It 'says what it does with -Verbose' {
        $verbose = Import-Lora "$Adapters/c" | Resize-Lora -Rank 2 -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
        $verbose.Count | Should -Be 15 -Because 'the plan, then each of the 14 modules'
        $verbose.Message | Where-Object { $_ -like 'model.layers.0.self_attn.q_proj: rank 4 -> 2, energy kept 61*' } | Should -Not -BeNullOrEmpty
    }

    It 'refuses two rank rules at once' {
        { Import-Lora "$Adapters/a" | Resize-Lora -Energy 0.5 -RelativeThreshold 0.5 -ErrorAction Stop } |
            Should -Throw -ErrorId 'AmbiguousParameterSet,LoraLego.Commands.ResizeLoraCommand'
    }
}

Describe 'Export-BaseModel and New-LoraFromModel' {
    BeforeAll {
        $base = Import-BaseModel "$Tiny/base" -Device Cpu
    }

    It 'bakes <Name> into the model and extracts it back' -ForEach @{ Name = 'a'; Rank = 8 }, @{ Name = 'd'; Rank = 16 } {
        $adapter = Import-Lora "$Adapters/$Name"
        $model = Import-BaseModel "$Tiny/base" -Device Cpu
        $adapter | Mount-Lora -Model $model -Merge
        $model | Export-BaseModel TestDrive:/baked-$Name
        'TestDrive:/baked-*/config.json' | Should -Exist
        $tuned = Import-BaseModel TestDrive:/baked-$Name -Device Cpu
        $extracted = New-LoraFromModel -Model $tuned -BaseModel $base -Rank $Rank
        Get-DeltaDifference $extracted $adapter | Should -BeLessThan 1e-4
        $extracted.RankChanges.Count | Should -Be $adapter.ModuleCount
    }

    It 'extracts only the modules -Module names' {
        $model = Import-BaseModel "$Tiny/base" -Device Cpu
        Import-Lora "$Adapters/a" | Mount-Lora -Model $model -Merge
        $extracted = $model | New-LoraFromModel -BaseModel $base -Module '*mlp*' -Rank 8
        $extracted.Modules.Key | ForEach-Object { $_ | Should -BeLike '*.mlp.*' }
        $extracted.ModuleCount | Should -Be 6
    }

    It 'refuses models whose adapters are mounted unmerged' {
        $model = Import-BaseModel "$Tiny/base" -Device Cpu
        Import-Lora "$Adapters/a" | Mount-Lora -Model $model
        { $model | Export-BaseModel TestDrive:/unmerged -ErrorAction Stop } |
            Should -Throw -ErrorId 'LoraLego.InvalidArgument,LoraLego.Commands.ExportBaseModelCommand' -ExpectedMessage '*-Merge*'
        'TestDrive:/unmerged' | Should -Not -Exist
        { New-LoraFromModel -Model $model -BaseModel $base -ErrorAction Stop } |
            Should -Throw -ErrorId 'LoraLego.InvalidArgument,LoraLego.Commands.NewLoraFromModelCommand'
    }

    It 'replaces a model only with -Force, and never a folder of other files' {
        $base | Export-BaseModel TestDrive:/again
        { $base | Export-BaseModel TestDrive:/again -ErrorAction Stop } |
            Should -Throw -ErrorId 'LoraLego.AlreadyExists,LoraLego.Commands.ExportBaseModelCommand' -ExpectedMessage '*-Force*'
        $base | Export-BaseModel TestDrive:/again -Force -DType BFloat16
        (Get-Content -Raw TestDrive:/again/config.json | ConvertFrom-Json).dtype | Should -Be bfloat16
        New-Item -ItemType Directory TestDrive:/notes | Out-Null
        Set-Content TestDrive:/notes/keep.txt 'mine'
        { $base | Export-BaseModel TestDrive:/notes -Force -ErrorAction Stop } |
            Should -Throw -ErrorId 'LoraLego.AlreadyExists,LoraLego.Commands.ExportBaseModelCommand'
        'TestDrive:/notes/keep.txt' | Should -Exist
    }

    It 'writes shards with an index past -MaxShardSize' {
        $files = $base | Export-BaseModel TestDrive:/shards -MaxShardSize 100000 -PassThru
        $files.Count | Should -BeGreaterThan 1
        $files.Name | Should -Contain ('model-00001-of-{0:D5}.safetensors' -f $files.Count)
        $index = Get-Content -Raw TestDrive:/shards/model.safetensors.index.json | ConvertFrom-Json -AsHashtable
        ($index.weight_map.Values | Sort-Object -Unique) | Should -Be ($files.Name | Sort-Object)
    }

    It 'copies the tokenizer and leaves weights of other formats behind' {
        New-Item -ItemType Directory TestDrive:/with-tokenizer | Out-Null
        Copy-Item "$Tiny/base/*" TestDrive:/with-tokenizer
        Copy-Item "$Fixtures/tiny-tokenizer/sentencepiece/tokenizer.model" TestDrive:/with-tokenizer
        Set-Content TestDrive:/with-tokenizer/pytorch_model.bin 'not read'
        Import-BaseModel TestDrive:/with-tokenizer -Device Cpu | Export-BaseModel TestDrive:/copied
        (Get-FileHash TestDrive:/copied/tokenizer.model).Hash | Should -Be (Get-FileHash "$Fixtures/tiny-tokenizer/sentencepiece/tokenizer.model").Hash
        'TestDrive:/copied/generation_config.json' | Should -Exist
        'TestDrive:/copied/pytorch_model.bin' | Should -Not -Exist
    }

    It 'writes nothing with -WhatIf' {
        $base | Export-BaseModel TestDrive:/whatif -WhatIf
        'TestDrive:/whatif' | Should -Not -Exist
    }
}
