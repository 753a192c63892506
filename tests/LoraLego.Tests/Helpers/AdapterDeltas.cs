namespace LoraLego.Tests;

/// <summary>
/// Effective updates scaling * B @ A computed here, in plain C# from the factors a pipeline
/// returned, so the Pester suite checks the cmdlets' output against PEFT's numbers without
/// trusting LoraLego's own delta code.
/// </summary>
public static class AdapterDeltas
{
    public static double[] Delta(float[] a, float[] b, int rank, int inFeatures, int outFeatures, double scaling)
    {
        var d = new double[outFeatures * inFeatures];
        for (int o = 0; o < outFeatures; o++)
            for (int r = 0; r < rank; r++)
            {
                double bv = b[o * rank + r] * scaling;
                for (int i = 0; i < inFeatures; i++)
                    d[o * inFeatures + i] += bv * a[r * inFeatures + i];
            }
        return d;
    }

    /// <summary>PEFT's delta.safetensors of a fixture folder, keyed by module path.</summary>
    public static Dictionary<string, double[]> Reference(string folder) =>
        SafetensorsBytes.TensorBytes(Path.Combine(folder, "delta.safetensors")).ToDictionary(
            kv => kv.Key["base_model.model.".Length..^".delta".Length],
            kv => SafetensorsBytes.Floats(kv.Value).Select(f => (double)f).ToArray());

    public static double RelativeError(double[] actual, double[] expected, double factor = 1.0)
    {
        double num = 0, den = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i] / factor;
            num += (actual[i] - e) * (actual[i] - e);
            den += e * e;
        }
        return Math.Sqrt(num / Math.Max(den, 1e-30));
    }
}
