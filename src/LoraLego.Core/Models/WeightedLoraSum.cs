using static TorchSharp.torch;

namespace LoraLego.Core.Models;

/// <summary>
/// The contribution of adapters attached unmerged: sum over j of w_j * scaling_j * B_j (A_j x),
/// with weights fixed at attach time. Owns its branches.
/// </summary>
public sealed class WeightedLoraSum : ILoraContribution, IDisposable
{
    private readonly List<(LoraBranch Branch, double Weight)> _terms = [];

    public IReadOnlyList<(LoraBranch Branch, double Weight)> Terms => _terms;

    /// <summary>Adds a branch; the sum now owns it.</summary>
    public void Add(LoraBranch branch, double weight) => _terms.Add((branch, weight));

    public Tensor Forward(Tensor input)
    {
        var total = _terms[0].Branch.Forward(input, _terms[0].Weight);
        foreach (var (branch, weight) in _terms.Skip(1))
        {
            using var term = branch.Forward(input, weight);
            total.add_(term);
        }
        return total;
    }

    public void Dispose()
    {
        foreach (var (branch, _) in _terms)
            branch.Dispose();
        _terms.Clear();
    }
}
