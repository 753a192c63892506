# Many merges at once: the module imported into each runspace of ForEach-Object -Parallel (one
# process, one libtorch), four merges of different methods side by side, against the same four run
# one after another.
BeforeDiscovery {
    $merges = @(
        @{ Name = 'lego'; Adapters = 'a', 'b', 'c'; Options = @{ Method = 'Lego'; Rank = 8; Seed = 1 } }
        @{ Name = 'linear'; Adapters = 'a', 'b'; Options = @{ Method = 'Linear'; Weight = 0.7, 0.3 } }
        @{ Name = 'dare-ties'; Adapters = 'a', 'b', 'd'; Options = @{ Method = 'DareTies'; Density = 0.5; Seed = 3 } }
        @{ Name = 'svd'; Adapters = 'a', 'c', 'd'; Options = @{ Method = 'Svd'; Rank = 8 } }
    )
}

BeforeAll {
    . "$PSScriptRoot/Common.ps1"
    # Text, not a script block: ForEach-Object -Parallel refuses script blocks through $using:.
    $script:mergeOne = @'
param($Merge, $Adapters, $Out)
$options = $Merge.Options
Import-Lora ($Merge.Adapters | ForEach-Object { Join-Path $Adapters $_ }) | Merge-Lora @options -Name $Merge.Name -Device Cpu |
    Export-Lora (Join-Path $Out $Merge.Name)
'@

    function Get-ExportedBytes([string] $Folder) {
        $files = @{}
        Get-ChildItem -LiteralPath $Folder -File | ForEach-Object { $files[$_.Name] = (Get-FileHash -LiteralPath $_.FullName).Hash }
        $files
    }
}

Describe 'Merges in ForEach-Object -Parallel' -ForEach @{ Merges = $merges } {
    BeforeAll {
        $sequential = Join-Path $TestDrive 'sequential'
        $parallel = Join-Path $TestDrive 'parallel'
        foreach ($merge in $Merges) { & ([scriptblock]::Create($mergeOne)) $merge $Adapters $sequential }
        $script:errors = $Merges | ForEach-Object -ThrottleLimit 4 -Parallel {
            Import-Module (Join-Path $using:RepoRoot 'LoraLego.psd1')
            try {
                & ([scriptblock]::Create($using:mergeOne)) $_ $using:Adapters $using:parallel -ErrorAction Stop
            }
            catch {
                "$($_.TargetObject): $_"
            }
        }
    }

    It 'runs every merge without an error' {
        $errors | Should -BeNullOrEmpty
    }

    It 'writes the same bytes for <Name> as the merge run alone' -ForEach $Merges {
        $alone = Get-ExportedBytes (Join-Path $TestDrive "sequential/$Name")
        $together = Get-ExportedBytes (Join-Path $TestDrive "parallel/$Name")
        $alone.Keys | Should -Contain 'adapter_model.safetensors'
        $together.Count | Should -Be $alone.Count
        foreach ($file in $alone.Keys) { $together[$file] | Should -Be $alone[$file] -Because $file }
    }

    It 'gives four different adapters' {
        $models = $Merges | ForEach-Object { (Get-ExportedBytes (Join-Path $TestDrive "parallel/$($_.Name)"))['adapter_model.safetensors'] }
        $models | Select-Object -Unique | Should -HaveCount 4
    }
}
