using LoraLego.Core.Adapters;

namespace LoraLego.Core.Formats;

/// <summary>
/// Writes an adapter in any <see cref="LoraFormat"/>: where it goes, what is checked before a byte is
/// written, and the write itself. PEFT writes a folder; kohya and diffusers write one file.
/// </summary>
public static class LoraWriter
{
    /// <summary>
    /// What an export to <paramref name="path"/> writes: for PEFT the folder; for kohya and diffusers the file
    /// itself when <paramref name="path"/> ends in .safetensors, else a file in that folder, named
    /// &lt;adapter name&gt;.safetensors (kohya) or pytorch_lora_weights.safetensors (diffusers, the name load_lora_weights looks for).
    /// </summary>
    public static string Destination(string path, LoraFormat format, string adapterName)
    {
        if (format == LoraFormat.Peft || path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            return path;
        return Path.Combine(path, format == LoraFormat.Kohya ? adapterName + ".safetensors" : DiffusersLoraReader.FileName);
    }

    /// <summary>Checks, before anything is written, that the adapter can be written in <paramref name="format"/> and read back as itself.</summary>
    /// <exception cref="LoraException">Naming <paramref name="destination"/>, the adapter and the module.</exception>
    public static void Validate(LoraAdapter adapter, LoraFormat format, string destination)
    {
        PeftAdapterWriter.Validate(adapter, destination);
        _ = format switch
        {
            LoraFormat.Kohya => KohyaLoraWriter.BuildItems(adapter, null, destination),
            LoraFormat.Diffusers => DiffusersLoraWriter.BuildItems(adapter, null, destination),
            _ => PeftAdapterWriter.BuildItems(adapter, null),
        };
    }

    /// <summary>Refuses to replace an existing adapter unless <paramref name="force"/>, and a file where a folder goes or the reverse.</summary>
    public static void CheckDestination(string destination, LoraFormat format, bool force)
    {
        if (format == LoraFormat.Peft)
        {
            PeftAdapterWriter.CheckDestination(destination, force);
            return;
        }
        if (Directory.Exists(destination))
            throw new LoraException(LoraErrorKind.AlreadyExists, destination, "is a folder; give a .safetensors file name or a folder to write the file into");
        if (File.Exists(destination) && !force)
            throw new LoraException(LoraErrorKind.AlreadyExists, destination, "already exists; use -Force to replace it");
    }

    /// <param name="dtype">Element type of the factors; null keeps each tensor's own.</param>
    public static void Write(LoraAdapter adapter, string destination, LoraFormat format, SafetensorsDType? dtype, CancellationToken cancellationToken = default)
    {
        if (format == LoraFormat.Peft)
        {
            PeftAdapterWriter.Write(adapter, destination, dtype, cancellationToken);
            return;
        }
        if (dtype is { } d && !d.IsFloating())
            throw new LoraException(LoraErrorKind.InvalidArgument, destination, $"cannot export LoRA factors as {d}");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(destination))!);
        if (format == LoraFormat.Kohya)
            KohyaLoraWriter.Write(adapter, destination, dtype, cancellationToken);
        else
            DiffusersLoraWriter.Write(adapter, destination, dtype, cancellationToken);
    }
}
