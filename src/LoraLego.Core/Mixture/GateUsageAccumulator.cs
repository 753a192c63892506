using LoraLego.Core.Formats;
using static TorchSharp.torch;

namespace LoraLego.Core.Mixture;

/// <summary>Sums recorded gate values over batches into per-gate means and per-row shares.</summary>
internal sealed class GateUsageAccumulator(LoraMixture mixture)
{
    private readonly Dictionary<MixtureGate, double[]> _sums = [];
    private readonly List<double[]> _rowShares = [];
    private long _tokens;

    /// <summary>Each row's mean gate value per expert over all gates and its real tokens, in the order added.</summary>
    public IReadOnlyList<double[]> RowShares => _rowShares;

    /// <param name="recorded">The values one forward pass recorded, one entry per gate.</param>
    /// <param name="tokenMask">[batch, seq] float32, 1 at real tokens.</param>
    public void Add(IReadOnlyList<(MixtureGate Gate, Tensor Values)> recorded, Tensor tokenMask)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var weights = tokenMask.unsqueeze(-1);
        Tensor? rowSums = null;
        foreach (var (gate, values) in recorded)
        {
            var masked = values.detach().mul(weights);
            var perRow = masked.sum(1);
            rowSums = rowSums is null ? perRow : rowSums.add(perRow);
            var gateSum = TensorBytes.ToArray<double>(perRow.sum(0L).to(ScalarType.Float64));
            var sums = _sums.TryGetValue(gate, out var s) ? s : _sums[gate] = new double[gateSum.Length];
            for (int i = 0; i < sums.Length; i++)
                sums[i] += gateSum[i];
        }
        var rowTokens = tokenMask.sum(1, keepdim: true).mul(recorded.Count);
        var shares = rowSums!.div(rowTokens).to(ScalarType.Float64).cpu();
        for (int r = 0; r < shares.shape[0]; r++)
            _rowShares.Add(TensorBytes.ToArray<double>(shares[r]));
        _tokens += (long)tokenMask.sum().item<float>();
    }

    /// <summary>Each gate's mean values per expert over the tokens added so far.</summary>
    public IReadOnlyList<GateUsage> Usage() =>
        mixture.Gates.Select(g => new GateUsage(g.Key, mixture.ExpertNames,
            _sums.TryGetValue(g, out var sums) ? sums.Select(s => s / _tokens).ToList() : [], _tokens)).ToList();
}
