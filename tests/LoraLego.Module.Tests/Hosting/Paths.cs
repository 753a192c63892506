namespace LoraLego.Module.Tests.Hosting;

public static class Paths
{
    public static string Root { get; } = FindRoot();

    public static string Fixtures => Path.Combine(Root, "tests", "fixtures");

    public static string PeftTinyLlama => Path.Combine(Fixtures, "peft-tiny-llama");

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "LoraLego.psd1")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("LoraLego.psd1 not found above " + AppContext.BaseDirectory);
    }
}
