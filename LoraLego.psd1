@{
    RootModule        = 'artifacts/module/LoraLego.dll'
    ModuleVersion     = '0.1.0'
    GUID              = '5b0f7c3e-8f8e-4c7a-9a3e-2d6a4e1c9b71'
    Author            = 'LoraLego contributors'
    Description       = 'Take LoRA adapters apart and put them back together: import, inspect, merge (LoRA-LEGO, PEFT methods), mix and export.'
    PowerShellVersion = '7.4'
    CompatiblePSEditions = @('Core')
    # The format file is read from the sources, so that a clone that was never built gets to the
    # check below (PowerShell validates FormatsToProcess before it runs ScriptsToProcess).
    FormatsToProcess  = @('src/LoraLego/LoraLego.format.ps1xml')
    ScriptsToProcess  = @('build/Assert-LoraLegoBuilt.ps1')
    CmdletsToExport   = @(
        'Import-Lora', 'Export-Lora',
        'Split-Msu', 'Join-Msu', 'Invoke-RankCluster', 'Merge-Lora', 'Optimize-LoraMerge', 'Invoke-LoraRecipe', 'ConvertTo-LoraRecipe',
        'Import-BaseModel', 'Mount-Lora', 'Dismount-Lora', 'Invoke-BaseModel', 'Measure-LoraModel',
        'New-LoraMixture', 'Optimize-LoraMixture', 'Set-LoraMixture', 'Export-LoraMixture', 'Import-LoraMixture', 'Get-LoraMixtureGate',
        'Resize-Lora', 'New-LoraFromModel', 'Export-BaseModel'
    )
    FunctionsToExport = @()
    AliasesToExport   = @()
    VariablesToExport = @()
    PrivateData       = @{ PSData = @{ Tags = @('LoRA', 'PEFT', 'merge', 'TorchSharp'); ProjectUri = '' } }
}
