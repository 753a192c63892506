# Import-BaseModel, Mount-Lora, Dismount-Lora, Invoke-BaseModel and Measure-LoraModel against
# transformers' logits (golden_logits.safetensors).
BeforeAll {
    . $PSScriptRoot/Common.ps1
    $golden = [LoraLego.Tests.SafetensorsBytes]::TensorBytes("$Tiny/golden_logits.safetensors")
    $flat = [LoraLego.Tests.SafetensorsBytes]::Longs($golden['input_ids'])
    $ids = [int[]]$flat[0..15], [int[]]$flat[16..31]
    function Get-Golden([string] $Name) { [LoraLego.Tests.SafetensorsBytes]::Floats($golden[$Name]) }
    function Get-MaxError([float[]] $Expected, [float[]] $Actual) {
        $Actual.Length | Should -Be $Expected.Length
        $worst = 0.0
        for ($i = 0; $i -lt $Expected.Length; $i++) { $worst = [math]::Max($worst, [math]::Abs($Expected[$i] - $Actual[$i])) }
        $worst
    }
    # Mean next-token cross entropy of the golden logits, computed here (2 rows of 16 tokens, 256 logits each).
    function Get-ExpectedLoss([float[]] $Logits) {
        $total = 0.0; $count = 0
        for ($r = 0; $r -lt 2; $r++) {
            for ($p = 0; $p -lt 15; $p++) {
                $row = $Logits[(($r * 16 + $p) * 256)..(($r * 16 + $p) * 256 + 255)]
                $max = ($row | Measure-Object -Maximum).Maximum
                $sum = 0.0; foreach ($v in $row) { $sum += [math]::Exp($v - $max) }
                $total += $max + [math]::Log($sum) - $row[$ids[$r][$p + 1]]; $count++
            }
        }
        $total / $count
    }
    $model = Import-BaseModel "$Tiny/base" -Device Cpu
}

Describe 'Import-BaseModel' {
    It 'describes the model' {
        $model.Architecture | Should -Be 'LlamaForCausalLM'
        $model.Config.LayerCount | Should -Be 2
        $model | Out-String -Width 250 | Should -Match 'LlamaForCausalLM\s+2\s+64'
    }

    It 'refuses an unsupported architecture as NotImplemented' {
        $null = New-Item -ItemType Directory TestDrive:/gpt2
        Set-Content TestDrive:/gpt2/config.json '{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}'
        { Import-BaseModel TestDrive:/gpt2 -ErrorAction Stop } | Should -Throw -ErrorId 'LoraLego.Unsupported,*' -ExpectedMessage '*GPT2LMHeadModel*'
    }

    It 'reports a missing folder as ObjectNotFound' {
        Import-BaseModel TestDrive:/nope -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }
}

Describe 'Invoke-BaseModel' {
    It 'gives transformers'' logits for the base' {
        Get-MaxError (Get-Golden base) (Invoke-BaseModel -Model $model -InputIds $ids).ToArray() | Should -BeLessThan 1e-4
    }

    It 'gives PEFT''s logits with an adapter for one call, and detaches it after' {
        Get-MaxError (Get-Golden adapter/a) (Invoke-BaseModel -Model $model -InputIds $ids -Adapter (Import-Lora "$Adapters/a")).ToArray() | Should -BeLessThan 1e-4
        $model.Adapters.Count | Should -Be 0
        Get-MaxError (Get-Golden base) (Invoke-BaseModel -Model $model -InputIds $ids).ToArray() | Should -BeLessThan 1e-4
    }
}

Describe 'Mount-Lora and Dismount-Lora' {
    AfterEach { Dismount-Lora -Model $model }

    It 'matches PEFT''s cat merge with three weighted adapters mounted' {
        Import-Lora "$Adapters/a", "$Adapters/b", "$Adapters/c" | Mount-Lora -Model $model -Weight 0.5, 0.3, 0.2
        Get-MaxError (Get-Golden merge/cat_abc) (Invoke-BaseModel -Model $model -InputIds $ids).ToArray() | Should -BeLessThan 1e-4
    }

    It 'matches PEFT with an rsLoRA adapter merged into the weights' {
        Import-Lora "$Adapters/d" | Mount-Lora -Model $model -Merge
        Get-MaxError (Get-Golden adapter/d) (Invoke-BaseModel -Model $model -InputIds $ids).ToArray() | Should -BeLessThan 1e-4
    }

    It 'restores the weights exactly on dismount' {
        $before = (Invoke-BaseModel -Model $model -InputIds $ids).ToArray()
        Import-Lora "$Adapters/a" | Mount-Lora -Model $model -Merge -PassThru | Out-Null
        Dismount-Lora -Model $model -Name a
        Get-MaxError $before (Invoke-BaseModel -Model $model -InputIds $ids).ToArray() | Should -Be 0
    }

    It 'reports an adapter that is not attached as ObjectNotFound' {
        Dismount-Lora -Model $model -Name math -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'LoraLego.NotFound,*'
    }
}

Describe 'Measure-LoraModel' {
    It 'gives the cross entropy of transformers'' logits' {
        $ids.ForEach{ @{ input_ids = $_ } | ConvertTo-Json -Compress } | Set-Content TestDrive:/rows.jsonl
        $base = Measure-LoraModel -Model $model -Data TestDrive:/rows.jsonl -BatchSize 1
        $withB = Measure-LoraModel -Model $model -Data TestDrive:/rows.jsonl -Adapter (Import-Lora "$Adapters/b")
        $base.Tokens | Should -Be 30
        [math]::Abs($base.Loss - (Get-ExpectedLoss (Get-Golden base))) | Should -BeLessThan 1e-4
        [math]::Abs($withB.Loss - (Get-ExpectedLoss (Get-Golden adapter/b))) | Should -BeLessThan 1e-4
        [math]::Abs($base.Perplexity - [math]::Exp($base.Loss)) | Should -BeLessThan 1e-9
    }

    It 'measures a one-expert mixture like its adapter, leaving nothing attached' {
        $a = Import-Lora "$Adapters/a"
        $data = "$RepoRoot/examples/data/tiny-llama-domain-a.jsonl"
        $mixed = (Measure-LoraModel -Model $model -Data $data -Mixture (New-LoraMixture -Adapter $a)).Loss
        [math]::Abs($mixed - (Measure-LoraModel -Model $model -Data $data -Adapter $a).Loss) | Should -BeLessThan 1e-6
        $model.Adapters.Count | Should -Be 0
    }

    It 'tokenizes text rows with the model folder''s tokenizer' {
        Copy-Item "$Tiny/base" TestDrive:/tok -Recurse
        Copy-Item "$Fixtures/tiny-tokenizer/sentencepiece/tokenizer.model" TestDrive:/tok
        '{"text": "merging adapters like lego bricks"}', '{"text": "a mixture of experts"}' | Set-Content TestDrive:/text.jsonl
        $measured = Measure-LoraModel -Model (Import-BaseModel TestDrive:/tok -Device Cpu) -Data TestDrive:/text.jsonl
        $measured.Rows | Should -Be 2
        $measured.Tokens | Should -BeGreaterThan 4
        [double]::IsFinite($measured.Loss) | Should -BeTrue
    }

    It 'stops between batches when the pipeline is stopped (Ctrl+C)' {
        $row = @{ input_ids = 1..64 } | ConvertTo-Json -Compress
        [IO.File]::WriteAllLines((Join-Path $TestDrive long.jsonl), [string[]](, $row * 50000))
        $ps = [powershell]::Create()
        $null = $ps.AddScript("Import-Module '$RepoRoot/LoraLego.psd1'; Measure-LoraModel -Model (Import-BaseModel '$Tiny/base' -Device Cpu) -Data '$TestDrive/long.jsonl' -BatchSize 4")
        $running = $ps.BeginInvoke()
        Start-Sleep -Seconds 3
        $running.IsCompleted | Should -BeFalse -Because 'the measurement must still be running to be stopped'
        # A guard against a stop that never comes, not a timing: the stop is checked between batches of milliseconds.
        $ps.BeginStop($null, $null).AsyncWaitHandle.WaitOne([TimeSpan]::FromSeconds(30)) | Should -BeTrue
        $ps.InvocationStateInfo.State | Should -Be 'Stopped'
        $ps.Dispose()
    }
}
