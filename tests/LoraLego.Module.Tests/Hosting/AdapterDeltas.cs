using System.Collections;
using System.Management.Automation;

namespace LoraLego.Module.Tests.Hosting;

/// <summary>
/// Effective updates scaling * B @ A computed here, in plain C# from the factors a pipeline
/// returned, so module tests check the cmdlets' output against PEFT's numbers without trusting
/// LoraLego's own delta code.
/// </summary>
public static class AdapterDeltas
{
    /// <summary>A script fragment that turns $adapter into one hashtable per module.</summary>
    /// <remarks>A foreach statement, because Modules is a List whose own ForEach method would shadow PowerShell's.</remarks>
    public const string Extract = "\nforeach ($m in $adapter.Modules) { @{ Key = $m.Key; Scaling = $m.Scaling; Rank = $m.Rank; In = $m.InFeatures; Out = $m.OutFeatures; A = $m.A.ToArray(); B = $m.B.ToArray() } }";

    public static Dictionary<string, double[]> FromOutput(IEnumerable<PSObject> modules) =>
        modules.Select(o => (Hashtable)o.BaseObject).ToDictionary(h => (string)h["Key"]!, Delta);

    private static double[] Delta(Hashtable h)
    {
        int rank = (int)h["Rank"]!;
        int inF = (int)(long)h["In"]!, outF = (int)(long)h["Out"]!;
        var a = (float[])h["A"]!;
        var b = (float[])h["B"]!;
        double s = (double)h["Scaling"]!;
        var d = new double[outF * inF];
        for (int o = 0; o < outF; o++)
            for (int r = 0; r < rank; r++)
            {
                double bv = b[o * rank + r] * s;
                for (int i = 0; i < inF; i++)
                    d[o * inF + i] += bv * a[r * inF + i];
            }
        return d;
    }

    /// <summary>PEFT's delta.safetensors of a fixture folder, keyed by module path.</summary>
    public static Dictionary<string, double[]> Reference(string folder) =>
        SafetensorsBytes.TensorBytes(Path.Combine(folder, "delta.safetensors")).ToDictionary(
            kv => kv.Key["base_model.model.".Length..^".delta".Length],
            kv => Enumerable.Range(0, kv.Value.Length / 4).Select(i => (double)BitConverter.ToSingle(kv.Value, i * 4)).ToArray());

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
