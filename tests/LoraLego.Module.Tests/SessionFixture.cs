using LoraLego.Module.Tests.Hosting;

namespace LoraLego.Module.Tests;

/// <summary>One runspace for the whole assembly: the module, and TorchSharp's native libraries, load once per process.</summary>
[CollectionDefinition(Name)]
public sealed class SessionCollection : ICollectionFixture<PowerShellSession>
{
    public const string Name = "PowerShell session";
}
