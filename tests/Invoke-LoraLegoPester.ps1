<#
.SYNOPSIS
Runs the Pester suite (every tests/**/*.Tests.ps1) against the built module, and writes JUnit XML.
.DESCRIPTION
Meant for a fresh `pwsh -NoProfile` process: a binary module cannot be unloaded, so the suite must
not share a session with an earlier import. Pester comes from the NuGet cache, where the build's
PackageDownload (tests/LoraLego.Tests/Helpers) put the version Directory.Build.props names. The
last line is the totals in the form .ci/run adds up: "Pester: Failed: N, Passed: N, Skipped: N".
#>
[CmdletBinding()]
param(
    [string] $ResultPath = "$PSScriptRoot/../artifacts/test-results/pester.xml",
    # Only test files whose name matches, e.g. -Filter Export* while working on one family.
    [string] $Filter = '*'
)
$ErrorActionPreference = 'Stop'
$version = ([xml](Get-Content -Raw "$PSScriptRoot/../Directory.Build.props")).Project.PropertyGroup.PesterVersion | Where-Object { $_ } | Select-Object -First 1
$packages = if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES } else { Join-Path ([Environment]::GetFolderPath('UserProfile')) '.nuget/packages' }
$pester = Join-Path $packages "pester/$version/tools/Pester.psd1"
if (-not (Test-Path -LiteralPath $pester)) {
    throw "Pester $version is not in $packages; build first (dotnet build LoraLego.slnx restores it)."
}
Import-Module $pester -RequiredVersion $version

$configuration = New-PesterConfiguration
$configuration.Run.Path = @(Get-ChildItem -Path $PSScriptRoot -Recurse -Filter "$Filter.Tests.ps1" | ForEach-Object FullName)
$configuration.Run.PassThru = $true
$configuration.Output.Verbosity = 'Normal'
$configuration.TestResult.Enabled = $true
$configuration.TestResult.OutputFormat = 'JUnitXml'
$configuration.TestResult.OutputPath = [IO.Path]::GetFullPath($ResultPath)
$null = New-Item -ItemType Directory -Force -Path (Split-Path $configuration.TestResult.OutputPath.Value)
$result = Invoke-Pester -Configuration $configuration
"Pester: Failed: $($result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount), Passed: $($result.PassedCount), Skipped: $($result.SkippedCount + $result.NotRunCount)"
exit [int]($result.Result -ne 'Passed')
