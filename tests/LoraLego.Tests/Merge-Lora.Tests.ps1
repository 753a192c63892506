# Split-Msu, Join-Msu, Invoke-RankCluster and Merge-Lora: merges checked against PEFT's deltas.
BeforeAll {
    . $PSScriptRoot/Common.ps1
}

Describe 'Merge-Lora reproduces PEFT' {
    It '<Fixture>: Merge-Lora <Arguments>' -ForEach @(
        @{ Fixture = 'linear_ab'; Names = 'a', 'b'; Arguments = @{ Method = 'Linear'; Weight = 0.6, 0.4 } }
        @{ Fixture = 'cat_abc'; Names = 'a', 'b', 'c'; Arguments = @{ Method = 'Cat'; Weight = 0.5, 0.3, 0.2 } }
        @{ Fixture = 'svd_abc'; Names = 'a', 'b', 'c'; Arguments = @{ Method = 'Svd' } }
        @{ Fixture = 'ties_ab_freq'; Names = 'a', 'b'; Arguments = @{ Method = 'Ties'; Weight = 0.6, 0.4; Density = 0.3; MajoritySign = 'Frequency' } }
        @{ Fixture = 'magprune_svd_abc'; Names = 'a', 'b', 'c'; Arguments = @{ Method = 'MagnitudePruneSvd'; Density = 0.5; DenseSvd = $true } }
        @{ Fixture = 'ties_svd_abc'; Names = 'a', 'b', 'c'; Arguments = @{ Method = 'TiesSvd'; Density = 0.5; DenseSvd = $true } }
    ) {
        $merged = $Names.ForEach{ "$Adapters/$_" } | Import-Lora | Merge-Lora @Arguments
        Get-ErrorAgainstPeft $merged $Fixture | Should -BeLessThan 1e-5
    }

    It 'gives an rsLoRA first adapter the intended update, not PEFT''s sqrt(r) times it' {
        $merged = Import-Lora "$Adapters/d", "$Adapters/a" | Merge-Lora -Method Cat
        Get-ErrorAgainstPeft $merged cat_da -Factor ([math]::Sqrt(24)) | Should -BeLessThan 1e-5
    }

    It 'is the Cat merge for Lego with one cluster per unit, no reweighting and Target Sum' {
        $merged = Import-Lora "$Adapters/a", "$Adapters/b", "$Adapters/c" | Split-Msu -Weight 0.5, 0.3, 0.2 | Invoke-RankCluster -K 20 |
            Merge-Lora -ParameterReweight:$false -Target Sum
        Get-ErrorAgainstPeft $merged cat_abc | Should -BeLessThan 1e-5
    }

    It 'is, with no options, the mean of its inputs: PEFT''s cat with weights w / N' {
        $merged = Import-Lora "$Adapters/a", "$Adapters/b", "$Adapters/c" | Merge-Lora -Weight 0.5, 0.3, 0.2
        $merged.Rank | Should -Be 20
        Get-ErrorAgainstPeft $merged cat_abc -Factor 3 | Should -BeLessThan 1e-5
        $steps = Import-Lora "$Adapters/a", "$Adapters/b", "$Adapters/c" | Split-Msu -Weight 0.5, 0.3, 0.2 | Invoke-RankCluster | Merge-Lora
        Get-ErrorAgainstPeft $steps cat_abc -Factor 3 | Should -BeLessThan 1e-5
    }
}

Describe 'Merge-Lora -Method Lego' {
    BeforeAll {
        $abc = Import-Lora "$Adapters/a", "$Adapters/b", "$Adapters/c"
    }

    It 'in one call equals the step-by-step pipeline' {
        $oneCall = $abc | Merge-Lora -Method Lego -Rank 8 -Seed 3
        $steps = $abc | Split-Msu | Invoke-RankCluster -K 8 -Seed 3 | Merge-Lora
        $oneCall.ModuleCount | Should -Be 14
        Get-DeltaDifference $steps $oneCall | Should -BeLessThan 1e-6
    }

    It 'has rank K, records its choices and round-trips through Export-Lora' {
        $merged = $abc | Merge-Lora -Rank 8 -Name abc
        $back = $merged | Export-Lora TestDrive:/lego -PassThru
        $merged.Name | Should -Be 'abc'
        $merged.Rank, $back.Rank | Should -Be 8, 8
        $recorded = $merged.Provenance.ToJsonString()
        $recorded | Should -BeLike '*"parameter_reweight":true*'
        $recorded | Should -BeLike '*"k":8*'
        Get-DeltaDifference $back $merged | Should -BeLessThan 1e-6
    }

    It 'gives an adapter merged with itself back unchanged (Target Mean)' {
        $a = Import-Lora "$Adapters/a"
        $self = $a, $a | Merge-Lora -Method Lego -Rank 8 -ParameterReweight:$false
        Get-DeltaDifference $self $a | Should -BeLessThan 1e-5
        $lossless = $a, $a, $a | Merge-Lora
        Get-DeltaDifference $lossless $a | Should -BeLessThan 1e-5
    }

    It 'does not depend on the order of its inputs' {
        $forward = $abc | Merge-Lora -Rank 8 -Seed 1
        $backward = $abc[2], $abc[1], $abc[0] | Merge-Lora -Rank 8 -Seed 1
        Get-DeltaDifference $backward $forward | Should -BeLessThan 1e-5
    }
}

Describe 'Split-Msu, Invoke-RankCluster and Join-Msu' {
    It 'says per module k and inertia, and which modules only some adapters have, with -Verbose' {
        $lego = Import-Lora "$Adapters/a", "$Adapters/c" | Split-Msu | Invoke-RankCluster -K 4 -Verbose 4>&1
        ($lego | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message -join "`n" | Should -Match 'k 4, inertia'
        $cat = Import-Lora "$Adapters/a", "$Adapters/d" | Merge-Lora -Method Cat -Verbose 4>&1
        ($cat | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message -join "`n" | Should -Match 'model\.layers\.0\.mlp\.down_proj: only in a'
    }

    It 'writes each module''s cluster right after its verbose line, in the order the modules arrive' {
        $a = Import-Lora "$Adapters/a"
        $written = $a, (Import-Lora "$Adapters/b") | Split-Msu | Invoke-RankCluster -K 4 -Verbose 4>&1 | ForEach-Object {
            if ($_ -is [LoraLego.Core.Clustering.RankCluster]) { "cluster $($_.ModuleKey)" }
            elseif ($_ -is [System.Management.Automation.VerboseRecord] -and $_.Message -match '^(\S+): \d+ units -> k') { "verbose $($Matches[1])" }
        }
        $written | Should -Be ($a.Modules.Key | ForEach-Object { "verbose $_"; "cluster $_" })
    }

    It 'keeps all units, with a warning, when a module has fewer than K' {
        $cluster = Import-Lora "$Adapters/c" | Split-Msu -Module '*layers.0.self_attn.q_proj' | Invoke-RankCluster -K 6 -WarningVariable warnings -WarningAction SilentlyContinue
        $cluster.K | Should -Be 4
        $warnings -join "`n" | Should -BeLike '*fewer than k = 6*'
    }

    It 'gives the adapter back when its split is joined' {
        $d = Import-Lora "$Adapters/d"
        $joined = $d | Split-Msu | Join-Msu -Name d2
        $joined.Name | Should -Be 'd2'
        Get-DeltaDifference $joined $d | Should -BeLessThan 1e-6
    }

    It 'emits units module by module across adapters' {
        $lines = Import-Lora "$Adapters/a", "$Adapters/c" | Split-Msu -Module '*layers.1.mlp.*' | ForEach-Object { "$($_.ModuleKey) $($_.Adapter)" }
        $lines.Count | Should -Be (3 * 12)
        $order = $lines | Select-Object -Unique
        $order.Count | Should -Be 6
        $order.ForEach{ $_.Split(' ')[1] } | Should -Be 'a', 'c', 'a', 'c', 'a', 'c'
    }
}

Describe 'Merge-Lora arguments' {
    It 'refuses <Arguments> with an InvalidArgument error' -ForEach @(
        @{ Arguments = @{ Method = 'Ties'; Weight = 1, 2, 3 }; Message = '*-Weight has 3 values for 2 adapters*' }
        @{ Arguments = @{ Method = 'Ties'; Density = 0.5; Restarts = 3 }; Message = '*-Restarts applies to -Method Lego only*' }
        @{ Arguments = @{ Method = 'Lego'; Density = 0.5 }; Message = '*-Density applies to the PEFT methods*' }
        @{ Arguments = @{ Method = 'Ties' }; Message = '*needs a density*' }
    ) {
        { Import-Lora "$Adapters/a", "$Adapters/b" | Merge-Lora @Arguments -ErrorAction Stop } |
            Should -Throw -ErrorId 'LoraLego.InvalidArgument,LoraLego.Commands.MergeLoraCommand' -ExpectedMessage $Message
    }

    It 'refuses Linear over different ranks, naming the module' {
        { Import-Lora "$Adapters/a", "$Adapters/c" | Merge-Lora -Method Linear -ErrorAction Stop } |
            Should -Throw -ExpectedMessage '*model.layers.*needs equal ranks*'
    }

    It 'has a -Method for every PEFT method of Core, and Lego' {
        $cmdlet = [Enum]::GetNames([LoraLego.Commands.LoraMergeMethod]) | Where-Object { $_ -ne 'Lego' }
        $cmdlet -join ',' | Should -Be ([Enum]::GetNames([LoraLego.Core.Merging.MergeMethod]) -join ',')
    }
}

Describe 'Adapters of different base models' {
    BeforeAll {
        $other = Join-Path $TestDrive 'b-other-base'
        $null = New-Item -ItemType Directory $other
        Copy-Item "$Adapters/b/adapter_model.safetensors" $other
        (Get-Content -Raw "$Adapters/b/adapter_config.json").Replace('"../../base"', '"other/base"') | Set-Content "$other/adapter_config.json"
    }

    It '<Command>: goes on with a warning that names each base' -ForEach @(
        @{ Command = 'Merge-Lora -Method Cat' }
        @{ Command = 'Split-Msu | Invoke-RankCluster -K 4 | Merge-Lora' }
        @{ Command = 'New-LoraMixture' }
    ) {
        $same = & ([scriptblock]::Create("Import-Lora '$Adapters/a', '$Adapters/b' | $Command -WarningVariable global:sameWarnings -WarningAction SilentlyContinue"))
        $global:sameWarnings | Should -BeNullOrEmpty
        @($same).Count | Should -Be 1
        $mixed = & ([scriptblock]::Create("Import-Lora '$Adapters/a', '$other' | $Command -WarningVariable global:mixedWarnings -WarningAction SilentlyContinue"))
        @($mixed).Count | Should -Be 1
        $global:mixedWarnings -join "`n" | Should -BeLike '*2 different base models (a: ../../base; b-other-base: other/base)*'
    }
}
