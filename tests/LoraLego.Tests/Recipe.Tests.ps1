# Recipes (Invoke-LoraRecipe, ConvertTo-LoraRecipe) and provenance in the safetensors header.
BeforeDiscovery {
    $methods = @(
        @{ Method = 'lego'; Inputs = 'a', 'b', 'c'; Yaml = 'parameters: {rank: 8}'; Seed = 1; Call = @{ Method = 'Lego'; Rank = 8; Seed = 1 } }
        @{ Method = 'lego'; Inputs = 'a', 'c'; Yaml = ''; Call = @{} }
        @{ Method = 'linear'; Inputs = 'a', 'b'; Yaml = ''; Call = @{ Method = 'Linear' } }
        @{ Method = 'cat'; Inputs = 'a', 'c'; Yaml = ''; Call = @{ Method = 'Cat' } }
        @{ Method = 'svd'; Inputs = 'a', 'b', 'c'; Yaml = 'parameters: {rank: 6}'; Call = @{ Method = 'Svd'; Rank = 6 } }
        @{ Method = 'ties'; Inputs = 'a', 'b'; Yaml = 'parameters: {density: 0.5, majority_sign_method: frequency}'; Call = @{ Method = 'Ties'; Density = 0.5; MajoritySign = 'Frequency' } }
        @{ Method = 'ties_svd'; Inputs = 'a', 'b', 'c'; Yaml = 'parameters: {density: 0.3, rank: 8}'; Call = @{ Method = 'TiesSvd'; Density = 0.3; Rank = 8 } }
        @{ Method = 'dare_linear'; Inputs = 'a', 'b'; Yaml = 'parameters: {density: 0.5}'; Seed = 7; Call = @{ Method = 'DareLinear'; Density = 0.5; Seed = 7 } }
        @{ Method = 'dare_ties'; Inputs = 'a', 'b'; Yaml = 'parameters: {density: 0.5}'; Seed = 7; Call = @{ Method = 'DareTies'; Density = 0.5; Seed = 7 } }
        @{ Method = 'dare_linear_svd'; Inputs = 'a', 'c'; Yaml = 'parameters: {density: 0.6, rank: 4}'; Seed = 7; Call = @{ Method = 'DareLinearSvd'; Density = 0.6; Rank = 4; Seed = 7 } }
        @{ Method = 'dare_ties_svd'; Inputs = 'a', 'c'; Yaml = 'parameters: {density: 0.6}'; Seed = 7; Call = @{ Method = 'DareTiesSvd'; Density = 0.6; Seed = 7 } }
        @{ Method = 'magnitude_prune'; Inputs = 'a', 'b'; Yaml = 'parameters: {density: 0.4}'; Call = @{ Method = 'MagnitudePrune'; Density = 0.4 } }
        @{ Method = 'magnitude_prune_svd'; Inputs = 'a', 'b', 'c'; Yaml = 'parameters: {density: 0.4, clamp: 0.99}'; Call = @{ Method = 'MagnitudePruneSvd'; Density = 0.4; Clamp = 0.99 } }
    )
    # Each: the recipe, the error id, and the line:column the message must name.
    $malformed = @(
        @{ Case = 'bad indentation'; Id = 'InvalidData'; At = '5:4'; Yaml = "merge_method: cat`nmodels:`n  - adapter: ADAPTERS/a`n    parameters: {weight: 1}`n   - adapter: ADAPTERS/b" }
        @{ Case = 'unknown method'; Id = 'InvalidData'; At = '1:15'; Yaml = "merge_method: slerp`nmodels:`n  - adapter: ADAPTERS/a" }
        @{ Case = 'weight as a string'; Id = 'InvalidData'; At = '4:26'; Yaml = "merge_method: cat`nmodels:`n  - adapter: ADAPTERS/a`n    parameters: {weight: heavy}" }
        @{ Case = 'weight quoted'; Id = 'InvalidData'; At = '4:26'; Yaml = "merge_method: cat`nmodels:`n  - adapter: ADAPTERS/a`n    parameters: {weight: '0.5'}" }
        @{ Case = 'missing adapter folder'; Id = 'NotFound'; At = '3:14'; Yaml = "merge_method: cat`nmodels:`n  - adapter: ADAPTERS/nothing-here`n  - adapter: ADAPTERS/b" }
        @{ Case = 'entry without adapter'; Id = 'InvalidData'; At = '3:5'; Yaml = "merge_method: cat`nmodels:`n  - name: a`n    parameters: {weight: 1}" }
        @{ Case = 'gradient of the wrong length'; Id = 'InvalidData'; At = '6:27'; Yaml = "merge_method: ties`nparameters: {density: 0.5}`nmodels:`n  - adapter: ADAPTERS/a`n  - adapter: ADAPTERS/b`n    parameters: {density: [1.0, 0.5, 0.2]}" }
        @{ Case = 'unknown key'; Id = 'InvalidData'; At = '4:18'; Yaml = "merge_method: cat`nmodels:`n  - adapter: ADAPTERS/a`n    parameters: {wieght: 1}" }
        @{ Case = 'option the method does not take'; Id = 'InvalidData'; At = '1:15'; Yaml = "merge_method: cat`nparameters: {density: 0.5}`nmodels:`n  - adapter: ADAPTERS/a" }
        @{ Case = 'ties without density'; Id = 'InvalidData'; At = '1:15'; Yaml = "merge_method: ties`nmodels:`n  - adapter: ADAPTERS/a`n  - adapter: ADAPTERS/b" }
        @{ Case = 'filters without a default'; Id = 'InvalidData'; At = '4:26'; Yaml = "merge_method: cat`nmodels:`n  - adapter: ADAPTERS/a`n    parameters: {weight: [{filter: self_attn, value: 2}]}" }
        @{ Case = 'name of no earlier document'; Id = 'NotFound'; At = '3:14'; Yaml = "merge_method: cat`nmodels:`n  - adapter: later`n---`nname: later`nmerge_method: cat`nmodels:`n  - adapter: ADAPTERS/a" }
        @{ Case = 'error in the second document'; Id = 'InvalidData'; At = '7:20'; Yaml = "merge_method: cat`nmodels:`n  - adapter: ADAPTERS/a`noutput: {path: OUT/first}`n---`nmerge_method: lego`nparameters: {rank: 0}`nmodels:`n  - adapter: ADAPTERS/a" }
    )
}

BeforeAll {
    . "$PSScriptRoot/Common.ps1"
    function Get-Header([string] $Folder) { [LoraLego.Tests.SafetensorsBytes]::Metadata((Join-Path $Folder 'adapter_model.safetensors')) }
    function Test-SameTensors([string] $X, [string] $Y) {
        [LoraLego.Tests.SafetensorsBytes]::SameTensors((Join-Path $X 'adapter_model.safetensors'), (Join-Path $Y 'adapter_model.safetensors'))
    }
}

Describe 'Invoke-LoraRecipe' {
    It 'writes the same tensors as Merge-Lora for <Method> of <Inputs>' -ForEach $methods {
        $dir = Join-Path $TestDrive "$Method-$($Inputs -join '')"
        $models = ($Inputs | ForEach-Object { "  - adapter: $Adapters/$_" }) -join "`n"
        $seed = if ($Seed) { "seed: $Seed" } else { '' }
        Invoke-LoraRecipe -Recipe "merge_method: $Method`nmodels:`n$models`n$Yaml`n$seed`noutput: {path: $dir/recipe}"
        $Inputs | ForEach-Object { Import-Lora "$Adapters/$_" } | Merge-Lora @Call | Export-Lora "$dir/call"
        Test-SameTensors "$dir/recipe" "$dir/call" | Should -BeTrue
    }

    It 'merges per-layer densities (a gradient) layer by layer: each layer equals Merge-Lora -Density at its value' {
        $ab = Import-Lora "$Adapters/a", "$Adapters/b"
        $merged = Invoke-LoraRecipe -Recipe "merge_method: ties_svd`nmodels: [{adapter: $Adapters/a}, {adapter: $Adapters/b}]`nparameters: {density: [0.9, 0.4], rank: 8}"
        $layer0 = $ab | ForEach-Object { $_.WithModules({ param($k) $k -like '*.layers.0.*' }) } | Merge-Lora -Method TiesSvd -Density 0.9 -Rank 8
        $layer1 = $ab | ForEach-Object { $_.WithModules({ param($k) $k -like '*.layers.1.*' }) } | Merge-Lora -Method TiesSvd -Density 0.4 -Rank 8
        $merged.ModuleCount | Should -Be 14
        foreach ($reference in $layer0, $layer1) {
            $reference.ModuleCount | Should -Be 7
            foreach ($m in $reference.Modules) {
                $merged.GetModule($m.Key).A.ToArray() | Should -Be $m.A.ToArray()
                $merged.GetModule($m.Key).B.ToArray() | Should -Be $m.B.ToArray()
            }
        }
        Get-DeltaDifference $merged ($ab | Merge-Lora -Method TiesSvd -Density 0.9 -Rank 8) | Should -BeGreaterThan 1e-3
    }

    It 'gives each module the weight of the first filter its name contains (<Filter>: <Weight>)' -ForEach @(
        @{ Filter = 'self_attn.q_proj'; Earlier = @(); Weight = 2.0 }
        @{ Filter = 'self_attn'; Earlier = @('self_attn.q_proj'); Weight = 0.5 }
        @{ Filter = '(default)'; Earlier = @('self_attn.q_proj', 'self_attn'); Weight = -1.0 }
    ) {
        $recipe = "merge_method: cat`nmodels:`n  - adapter: $Adapters/a`n  - adapter: $Adapters/c`n    parameters:`n      weight:`n" +
            "        - {filter: self_attn.q_proj, value: 2.0}`n        - {filter: self_attn, value: 0.5}`n        - {value: -1.0}"
        $merged = Invoke-LoraRecipe -Recipe $recipe
        $contains = if ($Filter -eq '(default)') { '' } else { $Filter }
        $keys = @($merged.Modules.Key | Where-Object { $key = $_; $key.Contains($contains) -and -not ($Earlier | Where-Object { $key.Contains($_) }) })
        $keys.Count | Should -Be @{ 'self_attn.q_proj' = 2; 'self_attn' = 6; '(default)' = 6 }[$Filter]
        $reference = Import-Lora "$Adapters/a", "$Adapters/c" | ForEach-Object { $_.WithModules({ param($k) $keys -contains $k }.GetNewClosure()) } |
            Merge-Lora -Method Cat -Weight 1, $Weight
        foreach ($key in $keys) {
            $merged.GetModule($key).B.ToArray() | Should -Be $reference.GetModule($key).B.ToArray()
            $merged.GetModule($key).A.ToArray() | Should -Be $reference.GetModule($key).A.ToArray()
        }
    }

    It 'refuses a recipe with <Case>, naming the line and column, and writes nothing' -ForEach $malformed {
        $out = Join-Path $TestDrive ($Case -replace ' ', '-')
        $text = $Yaml.Replace('ADAPTERS', $Adapters).Replace('OUT', $out)
        { Invoke-LoraRecipe -Recipe $text -ErrorAction Stop } | Should -Throw -ErrorId "LoraLego.$Id,LoraLego.Commands.InvokeLoraRecipeCommand" -ExpectedMessage "<recipe>:$At*"
        Test-Path $out | Should -BeFalse
    }

    It 'names the recipe file in its errors' {
        Set-Content TestDrive:/bad.yaml "merge_method: cat`nmodels:`n  - adapter: $Adapters/a`n    parameters: {weight: heavy}"
        { Invoke-LoraRecipe TestDrive:/bad.yaml -ErrorAction Stop } | Should -Throw -ExpectedMessage "*bad.yaml:4:*weight 'heavy' is not a number*"
    }

    It 'runs every example recipe (<_>)' -ForEach (Get-ChildItem "$PSScriptRoot/../../examples/recipes/*.yaml").Name {
        Push-Location $RepoRoot
        try {
            $text = (Get-Content "./examples/recipes/$_" -Raw).Replace('./out/', "$TestDrive/")
            $written = Invoke-LoraRecipe -Recipe $text -PassThru
            $written | Should -Not -BeNullOrEmpty
            $written | ForEach-Object { $_.Recipe | Should -Be $text }
        }
        finally { Pop-Location }
    }

    It 'checks without running under -WhatIf' {
        $text = "merge_method: cat`nmodels: [{adapter: $Adapters/a}]`noutput: {path: $TestDrive/whatif}"
        Invoke-LoraRecipe -Recipe $text -WhatIf
        Test-Path "$TestDrive/whatif" | Should -BeFalse
    }

    It 'refuses to replace an adapter without -Force' {
        $text = "merge_method: cat`nmodels: [{adapter: $Adapters/a}]`noutput: {path: $TestDrive/twice}"
        Invoke-LoraRecipe -Recipe $text
        { Invoke-LoraRecipe -Recipe $text -ErrorAction Stop } | Should -Throw -ErrorId 'LoraLego.AlreadyExists,LoraLego.Commands.InvokeLoraRecipeCommand'
        Invoke-LoraRecipe -Recipe $text -Force -PassThru | Should -Not -BeNullOrEmpty
    }
}

Describe 'Provenance' {
    It 'leaves adapter_config.json to PEFT and round-trips through the safetensors header' {
        $merged = Import-Lora "$Adapters/a", "$Adapters/b" | Merge-Lora -Rank 8 -Seed 2
        $back = $merged | Export-Lora TestDrive:/prov -PassThru
        $config = Get-Content TestDrive:/prov/adapter_config.json -Raw | ConvertFrom-Json -AsHashtable
        $config.ContainsKey('loralego') | Should -BeFalse
        $header = Get-Header "$TestDrive/prov"
        $header['loralego.provenance'] | Should -Be $merged.Provenance.ToJsonString()
        $back.Provenance.ToJsonString() | Should -Be $merged.Provenance.ToJsonString()
        $back.Provenance['inputs'][1]['sha256'].ToString() | Should -Be (Get-FileHash "$Adapters/b/adapter_model.safetensors" -Algorithm SHA256).Hash.ToLowerInvariant()
    }

    It 'moves a record an older version left in adapter_config.json into the header' {
        Copy-Item "$Adapters/a" TestDrive:/old -Recurse
        $config = Get-Content TestDrive:/old/adapter_config.json -Raw | ConvertFrom-Json -AsHashtable
        $config['loralego'] = @{ method = 'lego'; k = 4 }
        $config | ConvertTo-Json -Depth 5 | Set-Content TestDrive:/old/adapter_config.json
        $old = Import-Lora TestDrive:/old
        $old.Provenance['k'].ToString() | Should -Be '4'
        $old | Export-Lora TestDrive:/moved
        (Get-Content TestDrive:/moved/adapter_config.json -Raw | ConvertFrom-Json -AsHashtable).ContainsKey('loralego') | Should -BeFalse
        (Get-Header "$TestDrive/moved")['loralego.provenance'] | Should -BeLike '*"k":4*'
    }
}

Describe 'ConvertTo-LoraRecipe' {
    It 'writes a recipe that repeats the <Method> merge' -ForEach @(
        @{ Method = 'Ties'; Call = @{ Method = 'Ties'; Density = 0.5; Weight = 1, 0.7 } }
        @{ Method = 'DareTiesSvd'; Call = @{ Method = 'DareTiesSvd'; Density = 0.5; Seed = 11; Rank = 4 } }
        @{ Method = 'Lego'; Call = @{ Method = 'Lego'; Rank = 6; Seed = 3; Target = 'Sum'; OutputReweight = $true } }
    ) {
        $merged = Import-Lora "$Adapters/a", "$Adapters/b" | Merge-Lora @Call
        $merged | Export-Lora "TestDrive:/$Method-call"
        $recipe = ($merged | ConvertTo-LoraRecipe) + "output: {path: $TestDrive/$Method-recipe}"
        Invoke-LoraRecipe -Recipe $recipe
        Test-SameTensors "$TestDrive/$Method-recipe" "$TestDrive/$Method-call" | Should -BeTrue
    }

    It 'gives back the recipe that made an adapter, and refuses adapters without provenance' {
        $text = "merge_method: cat`nmodels: [{adapter: $Adapters/a}, {adapter: $Adapters/c}]"
        Invoke-LoraRecipe -Recipe $text | ConvertTo-LoraRecipe | Should -Be $text
        { Import-Lora "$Adapters/a" | ConvertTo-LoraRecipe -ErrorAction Stop } | Should -Throw -ErrorId 'LoraLego.InvalidArgument,LoraLego.Commands.ConvertToLoraRecipeCommand'
    }
}
