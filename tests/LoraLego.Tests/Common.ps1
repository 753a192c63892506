# Dot-sourced by every *.Tests.ps1 in BeforeAll (and BeforeDiscovery where data-driven cases need
# it): the module imported from ./LoraLego.psd1 as users import it, the repository's paths, and
# the independent references (PEFT deltas, safetensors bytes) from the helpers the build made.
$RepoRoot = [IO.Path]::GetFullPath("$PSScriptRoot/../..")
$Fixtures = Join-Path $RepoRoot 'tests/fixtures'
$Tiny = Join-Path $Fixtures 'peft-tiny-llama'
$Adapters = Join-Path $Tiny 'adapters'
Import-Module (Join-Path $RepoRoot 'LoraLego.psd1')
# Rendered text is compared in the tests: no ANSI colours in it.
$PSStyle.OutputRendering = 'PlainText'
if (-not ('LoraLego.Tests.AdapterDeltas' -as [type])) {
    Add-Type -Path (Join-Path $RepoRoot 'artifacts/test-helpers/LoraLego.Tests.Helpers.dll')
}

# Each module's effective update scaling * B A, computed by the helper rather than LoraLego, keyed by module.
function Get-TestDelta([Parameter(ValueFromPipeline)] $Adapter) {
    process {
        $deltas = @{}
        foreach ($m in $Adapter.Modules) {
            $deltas[$m.Key] = [LoraLego.Tests.AdapterDeltas]::Delta($m.A.ToArray(), $m.B.ToArray(), $m.Rank, $m.InFeatures, $m.OutFeatures, $m.Scaling)
        }
        $deltas
    }
}

# The largest relative Frobenius error of an adapter's modules against PEFT's delta.safetensors of a merge fixture.
function Get-ErrorAgainstPeft($Adapter, [string] $Merge, [double] $Factor = 1.0) {
    $expected = [LoraLego.Tests.AdapterDeltas]::Reference((Join-Path $Tiny "merges/$Merge"))
    $actual = Get-TestDelta $Adapter
    if (Compare-Object @($expected.Keys | Sort-Object) @($actual.Keys | Sort-Object)) { return [double]::PositiveInfinity }
    ($expected.Keys | ForEach-Object { [LoraLego.Tests.AdapterDeltas]::RelativeError($actual[$_], $expected[$_], $Factor) } | Measure-Object -Maximum).Maximum
}

# The largest relative error between two adapters' updates, module by module.
function Get-DeltaDifference($Actual, $Expected) {
    $x = Get-TestDelta $Actual
    $y = Get-TestDelta $Expected
    ($y.Keys | ForEach-Object { [LoraLego.Tests.AdapterDeltas]::RelativeError($x[$_], $y[$_], 1.0) } | Measure-Object -Maximum).Maximum
}

# Runs a script in a new pwsh, from -Location, with the module imported, and returns everything it
# printed (host text included, as a user sees it: -WhatIf lines, format views) and its exit code.
# For what only the host shows, and for documentation that must run on its own. -NoImport leaves
# the importing to the script.
function Invoke-FreshPwsh([string] $Script, [string] $Location = $RepoRoot, [switch] $NoImport) {
    $prelude = "`$ErrorActionPreference = 'Stop'; `$PSStyle.OutputRendering = 'PlainText'; Set-Location -LiteralPath '$($Location.Replace("'", "''"))'`n"
    if (-not $NoImport) { $prelude += "Import-Module '$((Join-Path $RepoRoot 'LoraLego.psd1').Replace("'", "''"))'`n" }
    $encoded = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($prelude + $Script))
    $dll = Join-Path $PSHOME 'pwsh.dll'
    $text = if (Test-Path -LiteralPath $dll) { dotnet $dll -NoProfile -NonInteractive -EncodedCommand $encoded 2>&1 } else { & (Join-Path $PSHOME 'pwsh') -NoProfile -NonInteractive -EncodedCommand $encoded 2>&1 }
    [pscustomobject]@{ ExitCode = $LASTEXITCODE; Text = ($text | Out-String -Width 250) }
}
