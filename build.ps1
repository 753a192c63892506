<#
.SYNOPSIS
Builds LoraLego, and optionally runs the tests or the example on the bundled adapters.
.EXAMPLE
./build.ps1 -Test
.EXAMPLE
./build.ps1 -Example
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
Push-Location $PSScriptRoot
try {
    dotnet build LoraLego.slnx -c $Configuration -p:TorchBackend=$TorchBackend
    if ($LASTEXITCODE) { throw "build failed ($LASTEXITCODE)" }
    if ($Test) {
        dotnet test LoraLego.slnx -c $Configuration --no-build
        if ($LASTEXITCODE) { throw "tests failed ($LASTEXITCODE)" }
    }
    if ($Example) {
        # A child process, so the module's native libraries do not stay loaded in this session.
        pwsh -NoProfile -Command "Import-Module '$PSScriptRoot/LoraLego.psd1'; & '$PSScriptRoot/examples/merge-lego.ps1'"
    }
}
finally {
    Pop-Location
}
