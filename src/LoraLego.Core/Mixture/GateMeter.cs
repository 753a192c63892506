using LoraLego.Core.Models;

namespace LoraLego.Core.Mixture;

/// <summary>Measures which experts a mixture's gates choose on given rows: per gate, and per row.</summary>
public static class GateMeter
{
    /// <summary>Runs the rows of a JSONL file (as <see cref="PerplexityEvaluator"/> reads them) through the model with the mixture attached.</summary>
    /// <param name="model">The base model; it must have no unmerged adapters attached.</param>
    /// <param name="mixture">The mixture, with its experts enabled or disabled as they should be measured.</param>
    /// <param name="jsonlPath">One JSON object per line; blank lines are skipped.</param>
    /// <param name="batchSize">Rows per forward pass.</param>
    /// <param name="cancellationToken">Checked before each batch.</param>
    public static GateMeasurement Measure(BaseModel model, LoraMixture mixture, string jsonlPath, int batchSize = 8, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        var reader = new JsonlTokenReader(jsonlPath, model);
        return Measure(model, mixture, reader.ReadRows(), batchSize, cancellationToken) with { Data = reader.FullPath };
    }

    /// <summary>Runs rows of token ids through the model with the mixture attached.</summary>
    /// <param name="model">The base model; it must have no unmerged adapters attached.</param>
    /// <param name="mixture">The mixture, with its experts enabled or disabled as they should be measured.</param>
    /// <param name="rows">Token ids, one array per row, of any lengths; empty rows are left out.</param>
    /// <param name="batchSize">Rows per forward pass.</param>
    /// <param name="cancellationToken">Checked before each batch.</param>
    public static GateMeasurement Measure(BaseModel model, LoraMixture mixture, IEnumerable<long[]> rows, int batchSize = 8, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(rows);
        return Measure(model, mixture, rows.Select(r => new TokenRow(r)), batchSize, cancellationToken);
    }

    /// <summary>Runs rows through the model with the mixture attached; the gates see every real token, labelled or not.</summary>
    /// <param name="model">The base model; it must have no unmerged adapters attached.</param>
    /// <param name="mixture">The mixture, with its experts enabled or disabled as they should be measured.</param>
    /// <param name="rows">Rows of any lengths; empty rows are left out.</param>
    /// <param name="batchSize">Rows per forward pass.</param>
    /// <param name="cancellationToken">Checked before each batch.</param>
    public static GateMeasurement Measure(BaseModel model, LoraMixture mixture, IEnumerable<TokenRow> rows, int batchSize = 8, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(mixture);
        ArgumentNullException.ThrowIfNull(rows);
        if (batchSize < 1)
            throw new LoraException(LoraErrorKind.InvalidArgument, mixture.Name, $"batch size must be at least 1, not {batchSize}");
        var usage = new GateUsageAccumulator(mixture);
        using var attachment = mixture.AttachTo(model);
        foreach (var batch in rows.Where(r => r.Length > 0).Chunk(batchSize))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var padded = new PaddedBatch(batch);
            attachment.Recorder.IsOn = true;
            try
            {
                using var ids = padded.Ids();
                using var logits = model.Forward(ids, padded.PromptLengths);
                using var mask = padded.TokenMask(model.Device);
                usage.Add(attachment.Recorder.Values, mask);
            }
            finally
            {
                attachment.Recorder.IsOn = false;
                attachment.ReleasePass();
            }
        }
        return new GateMeasurement(usage.Usage(), usage.RowShares, mixture.ExpertNames);
    }
}
