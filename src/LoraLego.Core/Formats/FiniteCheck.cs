using static TorchSharp.torch;

namespace LoraLego.Core.Formats;

/// <summary>
/// Refuses tensors with NaN or infinite values, by name: one Inf in one adapter's lora_A makes
/// every entry of a merged A non-finite, and an SVD of it fails inside libtorch. Adapters are
/// checked as their factors are read (import reads only headers, so the check runs when a merge,
/// a split, an attach or an export first reads the weights), and writes are checked after the
/// conversion to the written dtype (a value past float16's range becomes Inf there).
/// </summary>
public static class FiniteCheck
{
    /// <summary>The error id of a non-finite weight.</summary>
    public const string ErrorId = "NonFiniteWeights";

    /// <summary>Throws a LoraException naming <paramref name="target"/> and the tensor when <paramref name="tensor"/> holds a NaN or an infinity.</summary>
    /// <param name="context">Said after the counts, e.g. "after conversion to F16".</param>
    public static void Require(Tensor tensor, string? target, string tensorName, string? context = null)
    {
        if (!tensor.is_floating_point() || tensor.numel() == 0)
            return;
        using var scope = NewDisposeScope();
        if (tensor.isfinite().all().item<bool>())
            return;
        var bad = tensor.isfinite().logical_not();
        long count = bad.sum().item<long>();
        long nan = tensor.isnan().sum().item<long>();
        var first = bad.nonzero()[0];
        var index = TensorBytes.ToArray<long>(first);
        var value = tensor[index.Select(i => TensorIndex.Single(i)).ToArray()].to_type(ScalarType.Float64).item<double>();
        string at = $"[{string.Join(", ", index)}]";
        throw new LoraException(LoraErrorKind.InvalidData, target,
            $"tensor '{tensorName}' has {count} non-finite value{(count == 1 ? "" : "s")} ({nan} NaN, {count - nan} infinite; the first, {Describe(value)}, at {at}){(context is null ? "" : " " + context)}; " +
            "a merge or an export of it would be non-finite everywhere it reaches",
            errorId: ErrorId);
    }

    private static string Describe(double v) => double.IsNaN(v) ? "NaN" : double.IsPositiveInfinity(v) ? "+Inf" : "-Inf";
}
