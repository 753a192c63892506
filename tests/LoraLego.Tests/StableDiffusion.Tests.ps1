BeforeDiscovery {
    $Unsupported = @(
        @{ File = 'tucker'; Kind = 'Tucker' }
        @{ File = 'loha'; Kind = 'LoHa' }
        @{ File = 'lokr'; Kind = 'LoKr' }
        @{ File = 'dora'; Kind = 'DoRA' }
    )
}

BeforeAll {
    . $PSScriptRoot/Common.ps1
    $Sd = Join-Path $Fixtures 'sd'
}

Describe 'Stable Diffusion LoRAs' {
    It 'imports a kohya file and a diffusers folder of the same SDXL LoRA with the same module keys' {
        $kohya, $diffusers = Import-Lora "$Sd/sdxl-kohya.safetensors", "$Sd/sdxl-diffusers"
        $kohya.Format | Should -Be 'Kohya'
        $diffusers.Format | Should -Be 'Diffusers'
        $kohya.Name | Should -Be 'sdxl-kohya'
        $diffusers.Name | Should -Be 'sdxl-diffusers'
        Compare-Object $kohya.Modules.Key $diffusers.Modules.Key | Should -BeNullOrEmpty
        $kohya.Modules.Key | Should -Contain 'unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q'
        Get-DeltaDifference $diffusers $kohya | Should -BeLessThan 1e-6
    }

    It 'round-trips a kohya file with the same tensors and metadata' {
        $adapter = Import-Lora "$Sd/sd15-kohya.safetensors"
        $adapter | Export-Lora TestDrive:/
        $written = (Resolve-Path TestDrive:/sd15-kohya.safetensors).ProviderPath
        [LoraLego.Tests.SafetensorsBytes]::SameTensors("$Sd/sd15-kohya.safetensors", $written) | Should -BeTrue
        $back = Import-Lora $written
        $entries = { param($metadata) $metadata.GetEnumerator() | ForEach-Object { "$($_.Key)=$($_.Value)" } }
        $adapter.Metadata.Count | Should -Be 9
        Compare-Object (& $entries $back.Metadata) (& $entries $adapter.Metadata) | Should -BeNullOrEmpty
    }

    It 'converts kohya to diffusers and back with every update unchanged' {
        Import-Lora "$Sd/sdxl-kohya.safetensors" | Export-Lora TestDrive:/diffusers -Format Diffusers
        'TestDrive:/diffusers/pytorch_lora_weights.safetensors' | Should -Exist
        Import-Lora TestDrive:/diffusers | Export-Lora TestDrive:/again.safetensors -Format Kohya
        $again = Import-Lora TestDrive:/again.safetensors
        $again.Format | Should -Be 'Kohya'
        Get-DeltaDifference $again (Import-Lora "$Sd/sdxl-kohya.safetensors") | Should -BeLessThan 1e-6
    }

    It 'merges kohya LoRAs with conv modules and writes the merge as kohya, with updated metadata' {
        $merged = Import-Lora "$Sd/sd15-kohya.safetensors", "$Sd/sd15-kohya-b.safetensors" | Merge-Lora -Name blend
        ($merged.Modules | Where-Object Key -EQ 'unet.mid_block.resnets.1.conv2').Kernel.ToString() | Should -Be '3x3'
        $merged | Export-Lora TestDrive:/sd -PassThru | Select-Object -ExpandProperty Format | Should -Be 'Kohya'
        $written = Import-Lora TestDrive:/sd/blend.safetensors
        $written.Metadata['ss_output_name'] | Should -Be 'blend'
        $written.Metadata['ss_network_dim'] | Should -Be "$($merged.Rank)"
        $written.Metadata['sshs_model_hash'] | Should -Match '^[0-9a-f]{64}$'
        Get-DeltaDifference $written $merged | Should -BeLessThan 1e-6
    }

    It 'splits conv modules into units and joins them back' {
        $adapter = Import-Lora "$Sd/sd15-kohya.safetensors"
        $joined = $adapter | Split-Msu -Module '*conv*' | Join-Msu -Name units
        ($joined.Modules | Where-Object Key -EQ 'unet.down_blocks.0.resnets.0.conv1').Kernel.ToString() | Should -Be '3x3'
        $joined.ModuleCount | Should -Be 3
        Get-DeltaDifference $adapter $joined | Should -BeLessThan 1e-6
        $joined | Export-Lora TestDrive:/units.safetensors -Format Kohya
        'TestDrive:/units.safetensors' | Should -Exist
    }

    It 'refuses to overwrite a kohya file without -Force, and writes nothing with -WhatIf' {
        Import-Lora "$Sd/sd15-kohya.safetensors" | Export-Lora TestDrive:/x.safetensors
        { Import-Lora "$Sd/sd15-kohya.safetensors" | Export-Lora TestDrive:/x.safetensors -ErrorAction Stop } |
            Should -Throw -ErrorId 'LoraLego.AlreadyExists,LoraLego.Commands.ExportLoraCommand'
        Import-Lora "$Sd/sd15-kohya.safetensors" | Export-Lora TestDrive:/y.safetensors -WhatIf
        'TestDrive:/y.safetensors' | Should -Not -Exist
    }

    It 'refuses to write an LLM adapter as kohya' {
        { Import-Lora "$Adapters/a" | Export-Lora TestDrive:/llm -Format Kohya -ErrorAction Stop } |
            Should -Throw -ErrorId 'LoraLego.NoKohyaName,LoraLego.Commands.ExportLoraCommand'
        'TestDrive:/llm' | Should -Not -Exist
    }

    It 'refuses <Kind> modules, naming the module' -ForEach $Unsupported {
        { Import-Lora "$Sd/unsupported/$File.safetensors" -ErrorAction Stop } |
            Should -Throw -ErrorId 'LoraLego.UnsupportedLoraKind,LoraLego.Commands.ImportLoraCommand' -ExpectedMessage "*lora_unet_down_blocks_0_*$Kind*"
    }
}
