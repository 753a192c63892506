# Run by Import-Module before the module loads (ScriptsToProcess in LoraLego.psd1), so that
# importing a clone that was never built says how to build it, rather than naming a missing dll.
# Plain .NET calls: hosts with the bare engine (the help generator) have no Join-Path or Test-Path.
$root = [IO.Path]::GetDirectoryName($PSScriptRoot)
$dll = [IO.Path]::Combine($root, 'artifacts', 'module', 'LoraLego.dll')
if (-not [IO.File]::Exists($dll)) {
    throw "LoraLego is not built yet ($dll is missing). Build it first, in ${root}: dotnet tool restore && dotnet pwsh ./build.ps1 (or: dotnet build LoraLego.slnx)"
}
