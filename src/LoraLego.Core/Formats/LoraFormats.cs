using System.Text.Json.Nodes;
using LoraLego.Core.Adapters;

namespace LoraLego.Core.Formats;

public static class LoraFormats
{
    /// <summary>The format of <see cref="LoraAdapter.Format"/>'s text (PEFT, Kohya, Diffusers).</summary>
    public static LoraFormat Parse(string format) =>
        Enum.TryParse<LoraFormat>(format, ignoreCase: true, out var parsed) ? parsed : LoraFormat.Peft;

    /// <summary>
    /// The format an adapter is exported in unless told otherwise: the format it was read in; for a resized
    /// adapter, its source's; for a merge, the format of its inputs when they all agree (from its provenance), else PEFT.
    /// </summary>
    public static LoraFormat DefaultFor(LoraAdapter adapter)
    {
        if (adapter.Path is null && adapter.Provenance?[Provenance.FormatField] is JsonValue recorded && recorded.TryGetValue<string>(out var format))
            return Parse(format);
        if (adapter.Path is not null || adapter.Provenance?["inputs"] is not JsonArray inputs || inputs.Count == 0)
            return Parse(adapter.Format);
        var formats = inputs.Select(i => (i as JsonObject)?[Provenance.FormatField]?.GetValue<string>()).Distinct().ToList();
        return formats is [{ } only] ? Parse(only) : LoraFormat.Peft;
    }
}
