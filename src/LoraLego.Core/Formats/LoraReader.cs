using LoraLego.Core.Adapters;

namespace LoraLego.Core.Formats;

/// <summary>
/// Reads an adapter in whichever format it is: a PEFT folder (or its adapter_model.safetensors), a
/// diffusers folder or file, or a kohya file, told apart by the tensors' names.
/// </summary>
public static class LoraReader
{
    /// <param name="name">The adapter's name; by default its folder's (PEFT, a diffusers folder) or its file's, less the extension.</param>
    /// <param name="warn">Told what the reader kept but could not place (kohya names no table knows).</param>
    public static LoraAdapter Read(string path, string? name = null, Action<string>? warn = null)
    {
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            string diffusers = Path.Combine(full, DiffusersLoraReader.FileName);
            if (!File.Exists(Path.Combine(full, PeftAdapterReader.ModelFileName)) && File.Exists(diffusers))
                return ReadSingleFile(diffusers, name ?? new DirectoryInfo(full).Name, warn) ?? PeftAdapterReader.Read(path, name);
            return PeftAdapterReader.Read(path, name);
        }
        bool configBeside = File.Exists(Path.Combine(Path.GetDirectoryName(full) ?? ".", PeftAdapterReader.ConfigFileName));
        if (File.Exists(full) && full.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) && !configBeside)
        {
            string fileName = Path.GetFileName(full);
            string defaultName = fileName == DiffusersLoraReader.FileName ? new DirectoryInfo(Path.GetDirectoryName(full)!).Name : Path.GetFileNameWithoutExtension(full);
            if (ReadSingleFile(full, name ?? defaultName, warn) is { } adapter)
                return adapter;
        }
        return PeftAdapterReader.Read(path, name);
    }

    // Null when the names are neither kohya's nor diffusers': then it is a PEFT file, whose reader says what is missing.
    private static LoraAdapter? ReadSingleFile(string file, string name, Action<string>? warn)
    {
        var opened = SafetensorsFile.Open(file);
        if (KohyaLoraReader.Recognises(opened))
            return KohyaLoraReader.Read(opened, name, warn);
        if (DiffusersLoraReader.Recognises(opened))
            return DiffusersLoraReader.Read(opened, name);
        return null;
    }
}
