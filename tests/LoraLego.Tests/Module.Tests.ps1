# The module as a whole: manifest, help for every cmdlet and parameter (found by Get-Command, so
# new cmdlets are covered without touching this file), about_LoraLego, completers, the unbuilt clone.
BeforeDiscovery {
    . $PSScriptRoot/Common.ps1
    $cmdlets = Get-Command -Module LoraLego -CommandType Cmdlet | ForEach-Object { @{ Name = $_.Name } }
    $common = [System.Management.Automation.PSCmdlet]::CommonParameters + [System.Management.Automation.PSCmdlet]::OptionalCommonParameters
    $parameters = foreach ($c in Get-Command -Module LoraLego -CommandType Cmdlet) {
        # Hidden parameters (DontShow: the catch-all for wrong pipeline input) are left out of help on purpose.
        foreach ($p in $c.Parameters.Values | Where-Object { $_.Name -notin $common -and -not ($_.Attributes | Where-Object { $_ -is [System.Management.Automation.ParameterAttribute] -and $_.DontShow }) }) { @{ Cmdlet = $c.Name; Parameter = $p.Name } }
    }
}

BeforeAll {
    . $PSScriptRoot/Common.ps1
}

Describe 'LoraLego.psd1' {
    It 'is a valid manifest that exports every cmdlet it lists' {
        $manifest = Test-ModuleManifest (Join-Path $RepoRoot 'LoraLego.psd1')
        $exported = (Get-Command -Module LoraLego).Name
        $manifest.ExportedCmdlets.Keys | ForEach-Object { $exported | Should -Contain $_ }
    }

    It 'loads TorchSharp from the module folder' {
        $null = (Import-Lora "$Adapters/a").Modules[0].A.ToArray()
        [TorchSharp.torch].Assembly.Location | Should -Be (Join-Path $RepoRoot 'artifacts/module/TorchSharp.dll')
    }

    It 'says how to build when imported from a clone that was never built' {
        $clone = Join-Path $TestDrive 'unbuilt'
        $null = New-Item -ItemType Directory "$clone/build", "$clone/src/LoraLego"
        Copy-Item (Join-Path $RepoRoot 'LoraLego.psd1') $clone
        Copy-Item (Join-Path $RepoRoot 'build/Assert-LoraLegoBuilt.ps1') "$clone/build"
        Copy-Item (Join-Path $RepoRoot 'src/LoraLego/LoraLego.format.ps1xml') "$clone/src/LoraLego"
        $run = Invoke-FreshPwsh "Import-Module '$clone/LoraLego.psd1'" -Location $TestDrive -NoImport
        $run.ExitCode | Should -Not -Be 0
        $run.Text | Should -BeLike '*LoraLego is not built yet*dotnet build LoraLego.slnx*'
    }
}

Describe 'Help of <Name>' -ForEach $cmdlets {
    BeforeAll {
        $help = Get-Help $Name -Full
    }

    It 'has a written synopsis' {
        $help.Synopsis.Trim() | Should -Not -BeNullOrEmpty
        $help.Synopsis | Should -Not -Match "^$Name \[" -Because 'PowerShell makes a synopsis from the syntax when there is none'
    }

    It 'has a description and at least one example' {
        $help.description.Text -join ' ' | Should -Not -BeNullOrEmpty
        @($help.examples.example).Count | Should -BeGreaterThan 0
    }

    It 'is listed in about_LoraLego' {
        Get-Help about_LoraLego | Out-String | Should -BeLike "*$Name*"
    }
}

Describe 'Help of <Cmdlet> -<Parameter>' -ForEach $parameters {
    It 'is documented, with its default value' {
        $p = Get-Help $Cmdlet -Parameter $Parameter
        $p.description.Text -join ' ' | Should -Not -BeNullOrEmpty
        $p.defaultValue | Should -Not -BeNullOrEmpty
    }
}

Describe 'Default values in the help' {
    It 'come from the cmdlets: <Cmdlet> -<Parameter> defaults to <Expected>' -ForEach @(
        @{ Cmdlet = 'Merge-Lora'; Parameter = 'Method'; Expected = 'Lego' }
        @{ Cmdlet = 'Merge-Lora'; Parameter = 'Target'; Expected = 'Mean' }
        @{ Cmdlet = 'Merge-Lora'; Parameter = 'ParameterReweight'; Expected = 'True' }
        @{ Cmdlet = 'Export-Lora'; Parameter = 'DType'; Expected = 'Keep' }
        @{ Cmdlet = 'Export-Lora'; Parameter = 'Force'; Expected = 'False' }
        @{ Cmdlet = 'Merge-Lora'; Parameter = 'Name'; Expected = 'None' }
    ) {
        (Get-Help $Cmdlet -Parameter $Parameter).defaultValue | Should -Be $Expected
    }

    It 'agree with a new cmdlet object for Invoke-RankCluster -Restarts' {
        $cmdlet = [LoraLego.Commands.InvokeRankClusterCommand]::new()
        (Get-Help Invoke-RankCluster -Parameter Restarts).defaultValue | Should -Be "$($cmdlet.Restarts)"
    }
}

Describe 'about_LoraLego' {
    It 'explains the concepts' -ForEach @{ Concept = 'Adapter' }, @{ Concept = 'Unit' }, @{ Concept = 'Cluster' }, @{ Concept = 'Merge' }, @{ Concept = 'Mixture' } {
        Get-Help about_LoraLego | Out-String | Should -Match "(?m)^\s+$Concept\s*$"
    }
}

Describe 'Argument completion' {
    It 'completes Split-Msu -Module with the module keys of the adapter on the command line' {
        $global:completionAdapter = Import-Lora "$Adapters/c"
        try {
            $keys = (TabExpansion2 -inputScript 'Split-Msu -Adapter $global:completionAdapter -Module *layers.0.self_attn').CompletionMatches.CompletionText
            $keys | Should -Be 'model.layers.0.self_attn.k_proj', 'model.layers.0.self_attn.o_proj', 'model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj'
        }
        finally { Remove-Variable completionAdapter -Scope Global }
    }

    It 'completes Dismount-Lora -Name with the adapters attached to the model' {
        $global:completionModel = Import-BaseModel "$Tiny/base" -Device Cpu
        try {
            Import-Lora "$Adapters/a", "$Adapters/c" | Mount-Lora -Model $global:completionModel
            (TabExpansion2 -inputScript 'Dismount-Lora -Model $global:completionModel -Name ').CompletionMatches.CompletionText | Should -Be 'a', 'c'
        }
        finally { Remove-Variable completionModel -Scope Global }
    }

    It 'completes the enum values of <Cmdlet> -<Parameter>' -ForEach @(
        @{ Cmdlet = 'Merge-Lora'; Parameter = 'Method'; Word = 'Dare'; Expected = 'DareLinear', 'DareLinearSvd', 'DareTies', 'DareTiesSvd' }
        @{ Cmdlet = 'Export-Lora'; Parameter = 'DType'; Word = 'F'; Expected = 'Float16', 'Float32' }
        # On a machine without CUDA (CI) there is no Cuda:<n> to offer.
        @{ Cmdlet = 'Import-BaseModel'; Parameter = 'Device'; Word = 'c'; Expected = 'Cpu', 'Cuda' }
    ) {
        (TabExpansion2 -inputScript "$Cmdlet -$Parameter $Word").CompletionMatches.CompletionText | Should -Be $Expected
    }
}

Describe "libtorch's OpenMP threads" -Skip:(-not $IsLinux) {
    # Spinning OpenMP threads took a 7B Lego merge from 5.4 s to 27 s on a busy 2-core machine; the
    # policy has to be in the native environment before the module loads libtorch, so a fresh pwsh tells.
    BeforeAll {
        $saved = $env:OMP_WAIT_POLICY, $env:GOMP_SPINCOUNT
        $policy = { (Invoke-FreshPwsh '[LoraLego.Core.Compute.TorchRuntime]::OpenMpWaitPolicy').Text.Trim() }
    }
    AfterAll { $env:OMP_WAIT_POLICY, $env:GOMP_SPINCOUNT = $saved }

    It 'sleep between calls once the module is imported' {
        $env:OMP_WAIT_POLICY = $null
        $env:GOMP_SPINCOUNT = $null
        & $policy | Should -Be 'PASSIVE'
    }

    It "keep the user's own wait policy" {
        $env:OMP_WAIT_POLICY = 'ACTIVE'
        & $policy | Should -Be 'ACTIVE'
    }
}
