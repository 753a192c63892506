BeforeDiscovery {
    # The bad-input corpus: folder, category, error id and a phrase the message must contain.
    $malformed = @(
        @{ Folder = 'does-not-exist'; Category = 'ObjectNotFound'; Id = 'NotFound'; Message = 'no such file or folder' }
        @{ Folder = 'empty-folder'; Category = 'ObjectNotFound'; Id = 'NotFound'; Message = 'no adapter files' }
        @{ Folder = 'truncated'; Category = 'InvalidData'; Id = 'InvalidData'; Message = 'truncated' }
        @{ Folder = 'header-too-long'; Category = 'InvalidData'; Id = 'InvalidData'; Message = 'larger than the file' }
        @{ Folder = 'header-not-json'; Category = 'InvalidData'; Id = 'InvalidData'; Message = 'not valid JSON' }
        @{ Folder = 'offsets-out-of-range'; Category = 'InvalidData'; Id = 'InvalidData'; Message = 'outside the' }
        @{ Folder = 'offsets-overlap'; Category = 'InvalidData'; Id = 'InvalidData'; Message = 'overlap' }
        @{ Folder = 'shape-dtype-mismatch'; Category = 'InvalidData'; Id = 'InvalidData'; Message = 'needs 40 bytes' }
        @{ Folder = 'unsupported-dtype'; Category = 'NotImplemented'; Id = 'Unsupported'; Message = "unsupported dtype 'C64'" }
        @{ Folder = 'integer-factor'; Category = 'NotImplemented'; Id = 'Unsupported'; Message = 'must be floating point' }
        @{ Folder = 'missing-partner'; Category = 'InvalidData'; Id = 'InvalidData'; Message = 'has lora_A but no lora_B' }
        @{ Folder = 'rank-disagree'; Category = 'InvalidData'; Id = '*'; Message = 'disagree on the rank' }
        @{ Folder = 'config-rank-mismatch'; Category = 'InvalidData'; Id = '*'; Message = 'config gives rank 4 but the tensors have rank 2' }
        @{ Folder = 'config-not-json'; Category = 'InvalidData'; Id = 'InvalidData'; Message = 'adapter_config.json is not valid JSON' }
        @{ Folder = 'no-config'; Category = 'ObjectNotFound'; Id = 'NotFound'; Message = 'adapter_config.json not found' }
        @{ Folder = 'pickle'; Category = 'NotImplemented'; Id = 'Unsupported'; Message = 'pickle (.bin) adapters are not read' }
        @{ Folder = 'dora'; Category = 'NotImplemented'; Id = 'Unsupported'; Message = 'DoRA' }
        @{ Folder = 'dora-tensor-only'; Category = 'NotImplemented'; Id = 'Unsupported'; Message = 'DoRA' }
        @{ Folder = 'not-lora'; Category = 'NotImplemented'; Id = 'Unsupported'; Message = "peft_type 'IA3'" }
    )
}

BeforeAll {
    . $PSScriptRoot/Common.ps1
}

Describe 'Import-Lora' {
    It 'expands wildcards to every adapter folder' {
        $imported = Import-Lora "$Adapters/*"
        $imported.Name | Sort-Object | Should -Be 'a', 'b', 'c', 'd'
        $imported | ForEach-Object { $_ | Should -BeOfType LoraLego.Core.Adapters.LoraAdapter }
    }

    It 'binds folders from Get-ChildItem by property name' {
        (Get-ChildItem $Adapters -Directory | Import-Lora).Count | Should -Be 4
    }

    It 'binds strings by value and accepts a safetensors file' {
        $imported = "$Adapters/a", "$Adapters/d/adapter_model.safetensors" | Import-Lora
        $imported.Name | Should -Be 'a', 'd'
        $imported[1].Rank | Should -Be 16
        $imported[1].UseRsLora | Should -BeTrue
    }

    It 'takes -Name over the folder name' {
        (Import-Lora "$Adapters/a" -Name math).Name | Should -Be 'math'
    }

    It 'reads paths relative to the current location, a TestDrive: copy included' {
        Copy-Item "$Adapters/c" TestDrive:/c -Recurse
        Push-Location TestDrive:/
        try { (Import-Lora ./c).Rank | Should -Be 4 } finally { Pop-Location }
    }

    It 'shows a table of name, rank, alpha, rsLoRA, modules and parameters' {
        $text = Import-Lora "$Adapters/*" | Out-String -Width 250
        $text | Should -Match 'Name\s+Rank\s+Alpha\s+rsLoRA\s+Modules\s+Parameters'
        $text | Should -Match '\ba\s+8\s+16\s+False\s+14\s+16,384\b'
        $text | Should -Match '\bd\s+16\s+32\s+True\s+4\b'
    }

    It 'shows module shapes without loading the weights' {
        $text = (Import-Lora "$Adapters/a").Modules | Where-Object Key -like '*layers.0.self_attn.k_proj' | Out-String -Width 250
        $text | Should -Match 'model\.layers\.0\.self_attn\.k_proj\s+8\s+16\s+2\s+32\s+64\s+F32\[8x64\]\s+F32\[32x8\]'
    }

    It 'says what it read with -Verbose' {
        $verbose = Import-Lora "$Adapters/c" -Verbose 4>&1 | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }
        $verbose.Message -join "`n" | Should -Match 'c: 14 modules, r 4, alpha 8'
    }
}

Describe 'Import-Lora on bad input' {
    It '<Folder>: <Category> error naming the file' -ForEach $malformed {
        $path = Join-Path $Fixtures "malformed/$Folder"
        $output = Import-Lora -LiteralPath $path -ErrorVariable errors -ErrorAction SilentlyContinue
        $output | Should -BeNullOrEmpty
        $errors.Count | Should -Be 1
        $errors[0].CategoryInfo.Category | Should -Be $Category
        $errors[0].FullyQualifiedErrorId | Should -BeLike "LoraLego.$Id,LoraLego.Commands.ImportLoraCommand"
        $errors[0].Exception.Message | Should -BeLike "*$Message*"
        $errors[0].Exception.Message | Should -BeLike "*$path*"
    }

    It '<Folder>: terminating with -ErrorAction Stop' -ForEach $malformed {
        { Import-Lora -LiteralPath (Join-Path $Fixtures "malformed/$Folder") -ErrorAction Stop } | Should -Throw -ErrorId "LoraLego.*,LoraLego.Commands.ImportLoraCommand"
    }

    It 'refuses a pickle file without reading it' {
        { Import-Lora -LiteralPath "$Fixtures/malformed/pickle/adapter_model.bin" -ErrorAction Stop } |
            Should -Throw -ExpectedMessage '*unpickling can run arbitrary code*' -ErrorId 'LoraLego.Unsupported,LoraLego.Commands.ImportLoraCommand'
    }

    It 'goes on with the other inputs and the session keeps working' {
        $output = Import-Lora -LiteralPath "$Fixtures/malformed/truncated", "$Fixtures/malformed/valid", "$Fixtures/malformed/offsets-overlap" -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors.Count | Should -Be 2
        $output.Name | Should -Be 'valid'
        (Import-Lora -LiteralPath "$Fixtures/malformed/valid").Rank | Should -Be 2
    }
}
