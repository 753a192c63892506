using static TorchSharp.torch;

namespace LoraLego.Core.Merging;

/// <summary>TIES' trim step: keep the largest-magnitude entries of a tensor, zero the rest.</summary>
internal static class MagnitudeTrim
{
    /// <summary>
    /// Keeps exactly floor(density * numel) entries, chosen by top-k as PEFT does (not by a threshold, which would
    /// keep every entry tied with the k-th); density 1 keeps everything.
    /// </summary>
    public static Tensor Apply(Tensor task, double density)
    {
        if (density >= 1)
            return task.clone();
        using var scope = NewDisposeScope();
        var flat = task.reshape(-1);
        int keep = (int)(density * flat.shape[0]);
        var (_, indices) = flat.abs().topk(keep, largest: true, sorted: false);
        var mask = zeros_like(flat).index_fill_(0, indices, 1);
        return flat.mul(mask).view_as(task).MoveToOuterDisposeScope();
    }
}
