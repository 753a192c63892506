using LoraLego.Core.Models;

namespace LoraLego.Core.Surgery;

/// <summary>
/// A model's weights as they are now, merged adapters included. Unmerged adapters run beside the weights and are
/// not in them, so reading the weights of a model that has some would silently drop them: that is refused.
/// </summary>
internal static class BakedWeights
{
    public static void RequireNoUnmergedAdapters(BaseModel model)
    {
        var unmerged = model.Adapters.Where(a => a.Mode == AttachMode.Unmerged).Select(a => a.Name).ToList();
        if (unmerged.Count > 0)
            throw new LoraException(LoraErrorKind.InvalidArgument, model.Path,
                $"adapters {string.Join(", ", unmerged)} are mounted unmerged, so they are not in the weights; mount them with -Merge (Mount-Lora -Merge) or dismount them");
    }
}
