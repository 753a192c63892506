using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>
/// The combined update of a trimming merge (PEFT's ties, dare and magnitude_prune on the dense updates), built row
/// block by row block. Equal to <see cref="TaskCombiner.Combine"/> on the whole updates (the same magnitude cuts,
/// the same DARE draws for a seed), but no adapter's update is combined whole: the working set is one block of
/// every adapter, plus one adapter's magnitudes while its cut is found.
/// </summary>
internal static class TiledCombination
{
    /// <summary>About 16 MiB of float32 per adapter: few enough blocks that the per-call overhead (a few dozen libtorch calls a block) stays small.</summary>
    internal const long DefaultBlockEntries = 1 << 22;

    /// <summary>The combined out x in update (float32, on the inputs' device).</summary>
    public static Tensor Combine(ModuleInputs inputs, TaskCombiner combiner, Mt19937? random, long blockEntries = DefaultBlockEntries)
    {
        var members = inputs.Members;
        long rows = members[0].OutFeatures, cols = members[0].InFeatures;
        long blockRows = Math.Max(1, blockEntries / cols);
        var weights = members.Select(m => m.Weight).ToArray();
        var cuts = combiner.Trimming == Trimming.Magnitude ? members.Select(m => Cut(m, blockRows)).ToList() : null;
        var drops = combiner.Trimming == Trimming.RandomDrop
            ? DropStream.For(inputs.Densities, rows, cols, ScalarType.Float32, random ?? throw new InvalidOperationException("random drop needs a generator"))
            : null;
        var combined = empty(rows, cols, ScalarType.Float32, members[0].A.device);
        for (long start = 0; start < rows; start += blockRows)
        {
            using var scope = NewDisposeScope();
            long end = Math.Min(rows, start + blockRows);
            var trimmed = members.Select((m, i) =>
            {
                var block = m.DeltaRows(start, end);
                return cuts?[i].Apply(block, start * cols) ?? drops?[i].Apply(block) ?? block;
            }).ToList();
            combined.narrow(0, start, end - start).copy_(combiner.CombineTrimmed(trimmed, weights));
        }
        return combined;
    }

    // The magnitudes are gathered from the same block products the combination uses, so the cut sees exactly the values it trims.
    private static MagnitudeCut Cut(ModuleMember member, long blockRows)
    {
        using var scope = NewDisposeScope();
        long rows = member.OutFeatures, cols = member.InFeatures;
        var magnitudes = empty(rows * cols, ScalarType.Float32, member.A.device);
        for (long start = 0; start < rows; start += blockRows)
        {
            long end = Math.Min(rows, start + blockRows);
            using var block = member.DeltaRows(start, end);
            magnitudes.narrow(0, start * cols, (end - start) * cols).copy_(block.abs_().reshape(-1));
        }
        return MagnitudeCut.Of(magnitudes, member.Density);
    }
}
