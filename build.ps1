<#
.SYNOPSIS
Builds LoraLego, and optionally runs every test or the main job on the bundled adapters.
.DESCRIPTION
-Test runs the xunit projects (Core, CUDA) with dotnet test and the Pester suite in a fresh
pwsh, then fails if either failed. -Example runs examples/merge-lego.ps1 in a fresh pwsh: the
module's native libraries then do not stay loaded in this session.
.EXAMPLE
dotnet pwsh ./build.ps1 -Example
.EXAMPLE
dotnet pwsh ./build.ps1 -Test
#>
[CmdletBinding()]
param(
    [ValidateSet('Debug', 'Release')] [string] $Configuration = 'Debug',
    # cpu (default) or cuda; cuda expects a CUDA libtorch on the library path at run time.
    [ValidateSet('cpu', 'cuda')] [string] $TorchBackend = 'cpu',
    [switch] $Test,
    [switch] $Example
)
$ErrorActionPreference = 'Stop'

# This same PowerShell, in a new process: a dotnet tool runs as 'dotnet pwsh.dll', a global install as 'pwsh'.
function Invoke-FreshPwsh {
    $dll = Join-Path $PSHOME 'pwsh.dll'
    if (Test-Path -LiteralPath $dll) { dotnet $dll -NoProfile -NonInteractive @args } else { & (Join-Path $PSHOME 'pwsh') -NoProfile -NonInteractive @args }
}

Push-Location $PSScriptRoot
try {
    dotnet build LoraLego.slnx -c $Configuration -p:TorchBackend=$TorchBackend
    if ($LASTEXITCODE) { throw "build failed ($LASTEXITCODE)" }
    if ($Test) {
        dotnet test LoraLego.slnx -c $Configuration --no-build
        $xunit = $LASTEXITCODE
        Invoke-FreshPwsh -File ./tests/Invoke-LoraLegoPester.ps1
        $pester = $LASTEXITCODE
        if ($xunit -or $pester) { throw "tests failed (dotnet test: $xunit, Pester: $pester)" }
    }
    if ($Example) {
        Invoke-FreshPwsh -File ./examples/merge-lego.ps1
        if ($LASTEXITCODE) { throw "the example failed ($LASTEXITCODE)" }
    }
}
finally {
    Pop-Location
}
