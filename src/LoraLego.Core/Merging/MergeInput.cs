using LoraLego.Core.Adapters;
using LoraLego.Core.Formats;

namespace LoraLego.Core.Merging;

/// <summary>One adapter taking part in a merge, with the user's weight for it.</summary>
/// <param name="Density">This adapter's density for the trimming methods (as mergekit's per-model density);
/// null takes <see cref="MergeOptions.Density"/>, the one density of PEFT's merges.</param>
public sealed record MergeInput(LoraAdapter Adapter, double Weight = 1.0, double? Density = null)
{
    /// <summary>
    /// The dtype a merge of <paramref name="inputs"/> keeps its factors in: half precision when every
    /// input is half precision of one kind (as PEFT, whose merge takes the modules' dtype), else null (float32).
    /// </summary>
    public static SafetensorsDType? StorageDType(IReadOnlyList<MergeInput> inputs)
    {
        var kinds = inputs.Select(i => i.Adapter.DType).Distinct().ToList();
        return kinds is [SafetensorsDType.F16 or SafetensorsDType.BF16] ? kinds[0] : null;
    }

    /// <summary>The union of the inputs' module keys, in order of first appearance: the modules a merge produces.</summary>
    public static IReadOnlyList<string> ModuleKeys(IEnumerable<MergeInput> inputs) =>
        inputs.SelectMany(i => i.Adapter.Modules.Select(m => m.Key)).Distinct(StringComparer.Ordinal).ToList();
}
