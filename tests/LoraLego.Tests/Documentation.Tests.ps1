# Every fenced powershell block of README.md, every PS> transcript in it, every help example of
# every cmdlet (found by Get-Command) and every script in examples/ runs in a fresh pwsh, as a user
# would paste or run it. Each runs in a sandbox folder whose entries link to the repository's, so
# relative paths (./tests/fixtures/..., ./LoraLego.psd1) work and ./out is the sandbox's own.
BeforeDiscovery {
    . $PSScriptRoot/Common.ps1
    $readme = Get-Content -Raw (Join-Path $RepoRoot 'README.md')
    $fences = [regex]::Matches($readme, '(?ms)^```(?<lang>[a-z]*)\r?\n(?<code>.*?)^```')
    $line = { param($m) ($readme.Substring(0, $m.Index) -split "`n").Count }
    $readmeBlocks = $fences | Where-Object { $_.Groups['lang'].Value -eq 'powershell' } | ForEach-Object { @{ Line = & $line $_; Code = $_.Groups['code'].Value } }
    $transcripts = $fences | Where-Object { $_.Groups['code'].Value -match '(?m)^PS> ' } | ForEach-Object { @{ Line = & $line $_; Code = $_.Groups['code'].Value } }
    $otherBlocks = $fences | Where-Object { $_.Groups['lang'].Value -ne 'powershell' -and $_.Groups['code'].Value -notmatch '(?m)^PS> ' } | ForEach-Object { @{ Line = & $line $_; Lang = $_.Groups['lang'].Value; Code = $_.Groups['code'].Value.Trim() } }
    $helpExamples = foreach ($c in Get-Command -Module LoraLego -CommandType Cmdlet) {
        $i = 0
        foreach ($e in (Get-Help $c.Name -Examples).examples.example) { $i++; @{ Cmdlet = $c.Name; Number = $i; Code = ($e.code -join "`n") } }
    }
    $scripts = Get-ChildItem (Join-Path $RepoRoot 'examples') -Filter *.ps1 | ForEach-Object {
        @{ Name = $_.Name; Path = $_.FullName; Arguments = if ((Get-Command $_.FullName).Parameters.ContainsKey('OutDir')) { '-OutDir ./out' } else { '' } }
    }
}

BeforeAll {
    . $PSScriptRoot/Common.ps1
    # A folder that looks like the repository (every top-level entry linked) but has its own ./out.
    function New-Sandbox {
        $sandbox = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
        $null = New-Item -ItemType Directory $sandbox
        foreach ($entry in Get-ChildItem -Force $RepoRoot | Where-Object Name -notin 'out', '.git') {
            $type = if ($IsWindows -and $entry.PSIsContainer) { 'Junction' } else { 'SymbolicLink' }
            $null = New-Item -ItemType $type -Path (Join-Path $sandbox $entry.Name) -Target $entry.FullName
        }
        $sandbox
    }
}

Describe 'README.md' {
    It 'powershell block at line <Line> runs' -ForEach $readmeBlocks {
        $run = Invoke-FreshPwsh $Code -Location (New-Sandbox)
        $run.Text | Should -Not -Match '(?m)^\S*(Exception|Error|InvalidOperation|ParameterBinding|CommandNotFound)\S*:' -Because $run.Text
        $run.ExitCode | Should -Be 0 -Because $run.Text
    }

    It 'transcript at line <Line> prints what it shows' -ForEach $transcripts {
        $lines = $Code -split "`n"
        $commands = ($lines | Where-Object { $_ -like 'PS> *' } | ForEach-Object { $_.Substring(4) }) -join "`n"
        $run = Invoke-FreshPwsh $commands -Location (New-Sandbox)
        $run.ExitCode | Should -Be 0 -Because $run.Text
        $squash = { param($s) ($s -replace '\s+', ' ').Trim() }
        $actual = & $squash $run.Text
        foreach ($shown in $lines | Where-Object { $_ -notlike 'PS> *' -and $_.Trim() }) {
            $actual | Should -BeLike ('*' + [WildcardPattern]::Escape((& $squash $shown)) + '*')
        }
    }

    It 'has only the two set-up commands besides powershell blocks and transcripts' -ForEach @{ Other = $otherBlocks } {
        $Other.Code | Should -Be 'dotnet tool restore && dotnet pwsh ./build.ps1 -Example', 'dotnet pwsh ./build.ps1 -Test'
    }

    It 'runs the README''s first code line as printed, writing ./out/merged' -ForEach @{ First = $readmeBlocks[0] } {
        $sandbox = New-Sandbox
        $first = ($First.Code -split "`n" | Where-Object { $_.Trim() })
        $run = Invoke-FreshPwsh ($first -join "`n") -Location $sandbox -NoImport
        $run.ExitCode | Should -Be 0 -Because $run.Text
        (Import-Lora "$sandbox/out/merged").Rank | Should -Be 16
    }
}

Describe 'Help example <Number> of <Cmdlet>' -ForEach $helpExamples {
    It 'runs from the repository root' {
        $run = Invoke-FreshPwsh $Code -Location (New-Sandbox)
        $run.Text | Should -Not -Match '(?m)^\S*(Exception|Error|InvalidOperation|ParameterBinding|CommandNotFound)\S*:' -Because $run.Text
        $run.ExitCode | Should -Be 0 -Because $run.Text
    }
}

Describe 'examples/<Name>' -ForEach $scripts {
    It 'runs with pwsh -File, importing the module itself, without prompting' {
        $sandbox = New-Sandbox
        $run = Invoke-FreshPwsh "& '$Path' $Arguments" -Location $sandbox -NoImport
        $run.ExitCode | Should -Be 0 -Because $run.Text
        $run.Text | Should -Not -Match 'is not recognized|Supply values for the following parameters' -Because $run.Text
    }
}

Describe 'What the examples show' {
    It 'merge-lego.ps1: the one-call merge equals the pipeline, and the table compares Lego with PEFT''s merges' {
        $sandbox = New-Sandbox
        $run = Invoke-FreshPwsh "& ./examples/merge-lego.ps1 -OutDir ./out" -Location $sandbox -NoImport
        $run.Text | Should -BeLike '*one call equals step by step: True*'
        foreach ($name in 'base model', 'lego-ab', 'linear-ab', 'cat-ab', 'svd-ab', 'ties-svd-ab') {
            $run.Text | Should -Match "(?m)^$name\s+\d+\s+5\.\d{4}\s+5\.\d{4}\s+5\.\d{4}\s*$"
        }
        $config = Get-Content -Raw "$sandbox/out/lego-ab/adapter_config.json" | ConvertFrom-Json
        $config.base_model_name_or_path | Should -Be '../../base'
        $config.task_type | Should -Be 'CAUSAL_LM'
        # On skillbench the default merge is the mean of the adapters: PEFT's cat with weights 1/4, to the digit.
        $default = [regex]::Match($run.Text, '(?m)^Merge-Lora, no options \(the mean\)\s+32\s+(\d+\.\d{3})\s+0\.00').Groups[1].Value
        $cat = [regex]::Match($run.Text, '(?m)^PEFT cat, weights 1/4\s+32\s+(\d+\.\d{3})\s+0\.00').Groups[1].Value
        $default | Should -Not -BeNullOrEmpty
        $default | Should -Be $cat
        $run.Text | Should -Match '(?m)^Lego at the input rank \(-Rank 8\)\s+8\s+\d+\.\d{3}'
    }

    It 'inspect-and-export.ps1: rsLoRA scaling and a bfloat16 export' {
        $sandbox = New-Sandbox
        $run = Invoke-FreshPwsh "& ./examples/inspect-and-export.ps1 -OutDir ./out" -Location $sandbox -NoImport
        $run.Text | Should -BeLike '*d: scaling 8 (r 16, alpha 32, rsLoRA True)*'
        (Import-Lora "$sandbox/out/a-bf16").DType.ToString() | Should -Be 'BF16'
    }

    It 'measure-merges.ps1: a loss for the base and every candidate' {
        $run = Invoke-FreshPwsh "& ./examples/measure-merges.ps1" -NoImport
        $losses = [regex]::Matches($run.Text, '(?m)^(\S+)\s+loss 5\.\d{4}\s+perplexity 2\d\d\.\d\d')
        $losses.ForEach{ $_.Groups[1].Value } | Should -Be 'base', 'a', 'b', 'linear-ab', 'cat-ab', 'lego-ab'
    }

    It 'mole.ps1: the mask and history survive the round trip' {
        $sandbox = New-Sandbox
        $run = Invoke-FreshPwsh "& ./examples/mole.ps1 -OutDir ./out" -Location $sandbox -NoImport
        $run.Text | Should -BeLike '*round trip keeps the mask and the history: True*'
        $run.Text | Should -Match '(?m)^enabled: a\s*$'
        $run.Text | Should -Match '(?m)^tiny-llama-domain-b: loss 5\.\d{4} with likelihood gates\s*$'
        "$sandbox/out/mole-ab/mixture.json" | Should -Exist
    }
}
