BeforeAll {
    . $PSScriptRoot/Common.ps1
}

Describe 'Export-Lora' {
    It 'round-trips <Name> with bit-identical tensors and an equivalent config' -ForEach @{ Name = 'a' }, @{ Name = 'b' }, @{ Name = 'c' }, @{ Name = 'd' } {
        Import-Lora "$Adapters/$Name" | Export-Lora TestDrive:/$Name
        $written = (Resolve-Path TestDrive:/$Name).ProviderPath
        [LoraLego.Tests.SafetensorsBytes]::SameTensors("$Adapters/$Name/adapter_model.safetensors", "$written/adapter_model.safetensors") | Should -BeTrue
        $original = Get-Content -Raw "$Adapters/$Name/adapter_config.json" | ConvertFrom-Json -AsHashtable
        $config = Get-Content -Raw "$written/adapter_config.json" | ConvertFrom-Json -AsHashtable
        $config | ConvertTo-Json -Depth 10 -Compress | Should -Be ($original | ConvertTo-Json -Depth 10 -Compress)
    }

    It 'takes the folder as its first positional parameter, as the README writes it' {
        Import-Lora "$Adapters/c" | Export-Lora TestDrive:/positional
        'TestDrive:/positional/adapter_model.safetensors' | Should -Exist
        Export-Lora TestDrive:/positional2 (Import-Lora "$Adapters/c")
        'TestDrive:/positional2/adapter_config.json' | Should -Exist
    }

    It 'refuses to overwrite without -Force and replaces with it' {
        Import-Lora "$Adapters/a" | Export-Lora TestDrive:/over
        { Import-Lora "$Adapters/c" | Export-Lora TestDrive:/over -ErrorAction Stop } |
            Should -Throw -ErrorId 'LoraLego.AlreadyExists,LoraLego.Commands.ExportLoraCommand' -ExpectedMessage '*-Force*'
        (Get-Content -Raw TestDrive:/over/adapter_config.json | ConvertFrom-Json).r | Should -Be 8
        Import-Lora "$Adapters/c" | Export-Lora TestDrive:/over -Force
        (Get-Content -Raw TestDrive:/over/adapter_config.json | ConvertFrom-Json).r | Should -Be 4
        (Get-ChildItem TestDrive:/over -File).Count | Should -Be 2
    }

    It 'writes nothing with -WhatIf and says what it would do' {
        $folder = Join-Path $TestDrive whatif
        $run = Invoke-FreshPwsh "Import-Lora '$Adapters/a' | Export-Lora '$folder' -WhatIf"
        $run.ExitCode | Should -Be 0
        $folder | Should -Not -Exist
        $run.Text | Should -BeLike "*What if: *Export LoRA adapter 'a'*"
    }

    It 'writes nothing when -Confirm cannot be answered' {
        # The suite runs in a non-interactive pwsh: the prompt fails, and nothing is written.
        { Import-Lora "$Adapters/a" | Export-Lora TestDrive:/confirm -Confirm } | Should -Throw
        'TestDrive:/confirm' | Should -Not -Exist
    }

    It 'converts with -DType and returns the written adapter with -PassThru' {
        $back = Import-Lora "$Adapters/a" | Export-Lora TestDrive:/bf16 -DType BFloat16 -PassThru
        $back.DType.ToString() | Should -Be 'BF16'
        $back.Path | Should -Be (Resolve-Path TestDrive:/bf16).ProviderPath
        $back.ModuleCount | Should -Be 14
    }

    It 'refuses a file in the way and leaves no temporary files' {
        Set-Content TestDrive:/file-in-the-way 'in the way'
        { Import-Lora "$Adapters/a" | Export-Lora TestDrive:/file-in-the-way -ErrorAction Stop } |
            Should -Throw -ErrorId 'LoraLego.AlreadyExists,LoraLego.Commands.ExportLoraCommand' -ExpectedMessage '*is a file*'
        Get-ChildItem TestDrive:/ -Force -Filter '.*tmp' | Should -BeNullOrEmpty
    }

    It 'gives back the same update for every fixture adapter after export and import' -ForEach @{ Name = 'a' }, @{ Name = 'b' }, @{ Name = 'c' }, @{ Name = 'd' } {
        $original = Import-Lora "$Adapters/$Name"
        $back = $original | Export-Lora TestDrive:/rt-$Name -PassThru
        Get-DeltaDifference $back $original | Should -Be 0
    }

    It 'writes each adapter of a pipeline to its own folder' {
        Import-Lora "$Adapters/a", "$Adapters/b" | ForEach-Object { Export-Lora "TestDrive:/each/$($_.Name)" $_ }
        (Get-ChildItem TestDrive:/each -Directory).Name | Should -Be 'a', 'b'
    }
}
