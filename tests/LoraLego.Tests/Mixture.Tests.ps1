# New-, Optimize-, Set-, Get-LoraMixtureGate, Export- and Import-LoraMixture.
BeforeAll {
    . $PSScriptRoot/Common.ps1
    $model = Import-BaseModel "$Tiny/base" -Device Cpu
    $data = "$RepoRoot/examples/data/tiny-llama-domain-a.jsonl"
    function New-TestMixture { Import-Lora "$Adapters/a", "$Adapters/b" | New-LoraMixture -Name ab @args }
}

Describe 'New-LoraMixture and Optimize-LoraMixture' {
    It 'trains, reports each epoch with -Verbose, and keeps the loss history' {
        $output = New-TestMixture | Optimize-LoraMixture -Model $model -Data $data -Epochs 2 -BatchSize 8 -LearningRate 0.05 -Verbose 4>&1
        $mixture = $output | Where-Object { $_ -is [LoraLego.Core.Mixture.LoraMixture] }
        $mixture.Name | Should -Be 'ab'
        $mixture.LossHistory.Count | Should -Be 6
        @($output | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] -and $_.Message -like 'epoch *' }).Count | Should -Be 2
    }

    It 'renders as a table' {
        $text = New-TestMixture | Out-String -Width 250
        $text | Should -BeLike '*a, b*'
        $text | Should -BeLike '*Model*'
        $text | Should -BeLike '*Prompt*'
    }
}

Describe 'Get-LoraMixtureGate' {
    It 'reports the stored gates, one for the model by default or one per layer, uniform before training' {
        $gates = Get-LoraMixtureGate (New-TestMixture)
        $gates.Gate | Should -Be 'model'
        (Get-LoraMixtureGate (New-TestMixture -Granularity Layer)).Gate | Should -Be 'model.layers.0', 'model.layers.1'
        $gates | Out-String | Should -BeLike '*a 0.500  b 0.500*'
    }

    It 'takes wildcards in -Data and reports each file''s routing' {
        $files = "$RepoRoot/examples/data/tiny-llama-domain-*.jsonl"
        $mix = New-TestMixture
        $null = Optimize-LoraMixture $mix -Model $model -Data $files -Epochs 1
        $measured = Get-LoraMixtureGate $mix -Model $model -Data $files
        $measured.ForEach{ Split-Path $_.Data -Leaf } | Should -Be 'tiny-llama-domain-a.jsonl', 'tiny-llama-domain-b.jsonl'
        $measured.ForEach{ [math]::Round(($_.Routed | Measure-Object -Sum).Sum, 9) } | Should -Be 1, 1
        ($measured.Rows | Measure-Object -Sum).Sum | Should -Be $mix.Training.Rows
    }

    It 'measures gates on data from the pipeline' {
        $measured = New-TestMixture | Get-LoraMixtureGate -Model $model -Data $data
        $measured | ForEach-Object { $_.Tokens | Should -BeGreaterThan 0 }
    }
}

Describe 'Set-LoraMixture' {
    It 'disables and enables experts' {
        $mix = New-TestMixture
        (Set-LoraMixture $mix -Disable b -PassThru).EnabledExperts | Should -Be 'a'
        (Set-LoraMixture $mix -Enable b -PassThru).EnabledExperts.Count | Should -Be 2
    }

    It 'reports an unknown expert with LoraLego.NotFound' {
        { Set-LoraMixture (New-TestMixture) -Disable zzz -ErrorAction Stop } | Should -Throw -ErrorId 'LoraLego.NotFound,LoraLego.Commands.SetLoraMixtureCommand'
    }

    It 'changes nothing with -WhatIf' {
        $mix = New-TestMixture
        Set-LoraMixture $mix -Disable b -WhatIf
        $mix.DisabledExperts.Count | Should -Be 0
    }

    It 'completes -<Parameter> with the experts of the mixture on the command line' -ForEach @{ Parameter = 'Disable' }, @{ Parameter = 'Enable' } {
        $global:completionMixture = New-TestMixture
        try {
            (TabExpansion2 -inputScript "Set-LoraMixture -Mixture `$global:completionMixture -$Parameter ").CompletionMatches.CompletionText | Should -Be 'a', 'b'
            (TabExpansion2 -inputScript "Set-LoraMixture -Mixture `$global:completionMixture -$Parameter b").CompletionMatches.CompletionText | Should -Be 'b'
        }
        finally { Remove-Variable completionMixture -Scope Global }
    }
}

Describe 'Export-LoraMixture and Import-LoraMixture' {
    It 'round-trip the gates and the mask, and refuse to overwrite without -Force' {
        $mix = New-TestMixture | Optimize-LoraMixture -Model $model -Data $data -BatchSize 8 -LearningRate 0.05
        Set-LoraMixture $mix -Disable a
        $mix | Export-LoraMixture TestDrive:/mixture
        $back = Import-LoraMixture TestDrive:/mixture
        $before = (Get-LoraMixtureGate $mix -Model $model -Data $data).ForEach{ $_.ToString() } -join '|'
        $after = (Get-LoraMixtureGate $back -Model $model -Data $data).ForEach{ $_.ToString() } -join '|'
        $after | Should -Be $before
        $back.DisabledExperts | Should -Be 'a'
        'TestDrive:/mixture/experts/b/adapter_model.safetensors' | Should -Exist
        { $mix | Export-LoraMixture TestDrive:/mixture -ErrorAction Stop } | Should -Throw -ErrorId 'LoraLego.AlreadyExists,LoraLego.Commands.ExportLoraMixtureCommand'
        $mix | Export-LoraMixture TestDrive:/mixture -Force
    }

    It 'writes nothing with -WhatIf' {
        New-TestMixture | Export-LoraMixture TestDrive:/never -WhatIf
        'TestDrive:/never' | Should -Not -Exist
    }

    It 'round-trips a likelihood mixture through training and measurement' {
        $lik = New-TestMixture -GateInput Likelihood | Optimize-LoraMixture -Model $model -Data $data -BatchSize 8 -LearningRate 0.05
        $before = (Measure-LoraModel -Model $model -Mixture $lik -Data $data).Loss
        Export-LoraMixture TestDrive:/likelihood $lik
        $back = Import-LoraMixture TestDrive:/likelihood
        $back.GateInput.ToString() | Should -Be 'Likelihood'
        (Measure-LoraModel -Model $model -Mixture $back -Data $data).Loss | Should -Be $before
        (Measure-LoraModel -Model $model -Mixture (New-TestMixture) -Data $data).Loss | Should -Not -Be $before
    }
}
