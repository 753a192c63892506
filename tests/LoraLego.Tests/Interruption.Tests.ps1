# A pwsh process killed (SIGKILL, no chance to clean up) in the middle of Export-Lora or
# Export-LoraMixture leaves the target absent or complete, never partial.
BeforeAll {
    . $PSScriptRoot/Common.ps1

    # A large F32 adapter of zeros (8 modules, r 64, 4096 -> 4096: 32 MiB), written directly, so an
    # export with a conversion to F16 takes long enough to be killed in the middle.
    function New-LargeAdapter([string] $Folder) {
        $null = New-Item -ItemType Directory -Force $Folder
        $entries = [ordered]@{ '__metadata__' = @{ format = 'pt' } }
        $offset = 0
        $size = 64 * 4096 * 4
        for ($i = 0; $i -lt 8; $i++) {
            $entries["base_model.model.model.layers.$i.self_attn.q_proj.lora_A.weight"] = @{ dtype = 'F32'; shape = @(64, 4096); data_offsets = @($offset, ($offset + $size)) }
            $offset += $size
            $entries["base_model.model.model.layers.$i.self_attn.q_proj.lora_B.weight"] = @{ dtype = 'F32'; shape = @(4096, 64); data_offsets = @($offset, ($offset + $size)) }
            $offset += $size
        }
        $header = [Text.Encoding]::UTF8.GetBytes(($entries | ConvertTo-Json -Depth 5 -Compress))
        $stream = [IO.File]::Create((Join-Path $Folder 'adapter_model.safetensors'))
        try {
            $stream.Write([BitConverter]::GetBytes([uint64]$header.Length), 0, 8)
            $stream.Write($header, 0, $header.Length)
            $stream.SetLength(8 + $header.Length + $offset)
        }
        finally { $stream.Dispose() }
        @{ peft_type = 'LORA'; r = 64; lora_alpha = 64; target_modules = @('q_proj') } | ConvertTo-Json | Set-Content (Join-Path $Folder 'adapter_config.json')
    }

    # Starts a pwsh that imports the module and runs $Script; returns the process.
    function Start-Pwsh([string] $Script) {
        $prelude = "`$ErrorActionPreference = 'Stop'; Import-Module '$((Join-Path $RepoRoot 'LoraLego.psd1').Replace("'", "''"))'`n"
        $encoded = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($prelude + $Script))
        $dll = Join-Path $PSHOME 'pwsh.dll'
        $info = if (Test-Path -LiteralPath $dll) { [Diagnostics.ProcessStartInfo]::new('dotnet') } else { [Diagnostics.ProcessStartInfo]::new((Join-Path $PSHOME 'pwsh')) }
        if (Test-Path -LiteralPath $dll) { $info.ArgumentList.Add($dll) }
        foreach ($a in '-NoProfile', '-NonInteractive', '-EncodedCommand', $encoded) { $info.ArgumentList.Add($a) }
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        [Diagnostics.Process]::Start($info)
    }

    # Waits until a temporary folder of the export appears under $Parent (the write has begun),
    # sleeps $DelayMs more, then kills the process with SIGKILL. Returns whether the write had begun.
    function Stop-Midway($Process, [string] $Parent, [int] $DelayMs) {
        $deadline = [DateTime]::UtcNow.AddSeconds(60)
        $begun = $false
        while (-not $Process.HasExited -and [DateTime]::UtcNow -lt $deadline) {
            if (Get-ChildItem -LiteralPath $Parent -Force -Filter '.ll-*.tmp' -ErrorAction Ignore) { $begun = $true; break }
            Start-Sleep -Milliseconds 5
        }
        if ($begun -and $DelayMs -gt 0) { Start-Sleep -Milliseconds $DelayMs }
        if (-not $Process.HasExited) { $Process.Kill() }  # SIGKILL on Linux and macOS, TerminateProcess on Windows
        $Process.WaitForExit()
        $begun
    }

    # Absent, or an adapter whose every tensor is there in full.
    function Assert-AbsentOrComplete([string] $Folder, [int] $Modules) {
        if (-not (Test-Path -LiteralPath $Folder)) { return 'absent' }
        $file = Join-Path $Folder 'adapter_model.safetensors'
        $file | Should -Exist
        (Join-Path $Folder 'adapter_config.json') | Should -Exist
        [LoraLego.Tests.SafetensorsBytes]::TensorBytes($file).Count | Should -Be (2 * $Modules)
        $adapter = Import-Lora -LiteralPath $Folder
        $adapter.ModuleCount | Should -Be $Modules
        $adapter.Modules | ForEach-Object { $_.A.ToArray().Length + $_.B.ToArray().Length } | Measure-Object -Sum | ForEach-Object Sum | Should -Be (2 * 64 * 4096 * $Modules)
        'complete'
    }

    $large = Join-Path $TestDrive 'large'
    New-LargeAdapter $large
}

Describe 'Killed in the middle of a write' {
    It 'Export-Lora killed <DelayMs> ms after the write began leaves the folder absent or complete' -ForEach @(
        @{ DelayMs = 0 }, @{ DelayMs = 40 }, @{ DelayMs = 150 }, @{ DelayMs = 400 }
    ) {
        $parent = Join-Path $TestDrive "export-$DelayMs"
        $null = New-Item -ItemType Directory $parent
        $target = Join-Path $parent 'out'
        $process = Start-Pwsh "Import-Lora '$large' | Export-Lora '$target' -DType Float16"
        $begun = Stop-Midway $process $parent $DelayMs
        $begun | Should -BeTrue -Because 'the kill must land while the export runs'
        $state = Assert-AbsentOrComplete $target 8
        Write-Host "Export-Lora killed $DelayMs ms into the write: target $state"
    }

    It 'Export-LoraMixture killed <DelayMs> ms after the write began leaves the folder absent or complete' -ForEach @(
        @{ DelayMs = 0 }, @{ DelayMs = 100 }, @{ DelayMs = 300 }
    ) {
        $parent = Join-Path $TestDrive "mixture-$DelayMs"
        $null = New-Item -ItemType Directory $parent
        $target = Join-Path $parent 'out'
        $process = Start-Pwsh "`$e1 = Import-Lora '$large' -Name e1; `$e2 = Import-Lora '$large' -Name e2; `$e1, `$e2 | New-LoraMixture -Name big | Export-LoraMixture '$target'"
        $begun = Stop-Midway $process $parent $DelayMs
        $begun | Should -BeTrue -Because 'the kill must land while the export runs'
        $state = if (-not (Test-Path -LiteralPath $target)) { 'absent' } else {
            $mixture = Import-LoraMixture $target
            $mixture.Experts.Count | Should -Be 2
            foreach ($name in 'e1', 'e2') { $null = Assert-AbsentOrComplete (Join-Path $target "experts/$name") 8 }
            'complete'
        }
        Write-Host "Export-LoraMixture killed $DelayMs ms into the write: target $state"
    }

    It 'a run that is not killed writes the whole adapter' {
        $target = Join-Path $TestDrive 'not-killed'
        $process = Start-Pwsh "Import-Lora '$large' | Export-Lora '$target' -DType Float16"
        $process.WaitForExit()
        $process.ExitCode | Should -Be 0
        Assert-AbsentOrComplete $target 8 | Should -Be 'complete'
    }
}
