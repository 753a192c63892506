namespace LoraLego.Core.Surgery;

/// <summary>Progress of a module-by-module job: <paramref name="Index"/> modules of <paramref name="Count"/> done, <paramref name="Module"/> under way.</summary>
public sealed record SurgeryProgress(int Index, int Count, string Module);
