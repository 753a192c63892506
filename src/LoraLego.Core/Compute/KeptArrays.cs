namespace LoraLego.Core.Compute;

/// <summary>
/// Arrays one worker uses again from module to module, one per use, grown to the largest size asked for. Fresh arrays
/// of a few MB per module each cost a page fault per 4 KiB on first touch (about 10 µs each on the dev VM, where a 7B
/// TiesSvd took a million of them), and held the memory in the large-object heap until a full collection anyway.
/// </summary>
/// <remarks>
/// The arrays are pinned (their addresses may be held while a kernel runs) and their contents are undefined: a caller
/// writes what it reads. An array stays the caller's until it asks for the same use again, so a use belongs to one
/// caller at a time; callers on several threads name their own uses (the index).
/// </remarks>
internal sealed class KeptArrays
{
    private readonly Dictionary<(Type Element, string Use, int Index), Array> arrays = [];

    /// <summary>An array of at least <paramref name="count"/> elements for <paramref name="use"/> (and <paramref name="index"/>).</summary>
    public T[] Get<T>(string use, int count, int index = 0) where T : unmanaged
    {
        lock (arrays)
        {
            var kept = (T[]?)arrays.GetValueOrDefault((typeof(T), use, index));
            if (kept is not null && kept.Length >= count)
                return kept;
            // A quarter more than the last, so that sizes that wander up from module to module do not each grow it.
            int length = kept is null ? count : (int)Math.Max(count, Math.Min(Array.MaxLength, kept.Length + (long)kept.Length / 4));
            var grown = GC.AllocateUninitializedArray<T>(length, pinned: true);
            arrays[(typeof(T), use, index)] = grown;
            return grown;
        }
    }
}

/// <summary>The fallback of code that runs with or without a worker's <see cref="KeptArrays"/>.</summary>
internal static class KeptArraysExtensions
{
    /// <summary>
    /// <paramref name="kept"/>'s array for <paramref name="use"/> where there is one, else a fresh pinned array of
    /// <paramref name="count"/> (a single merge or a test): either way pinned, contents undefined.
    /// </summary>
    public static T[] GetOrNew<T>(this KeptArrays? kept, string use, int count, int index = 0) where T : unmanaged =>
        kept?.Get<T>(use, count, index) ?? GC.AllocateUninitializedArray<T>(count, pinned: true);
}
