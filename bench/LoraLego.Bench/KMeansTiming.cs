using System.Diagnostics;
using LoraLego.Core.Clustering;
using LoraLego.Core.Compute;
using static TorchSharp.torch;

namespace LoraLego.Bench;

/// <summary>KMeans.Fit alone on one 7B module's pool: 8 adapters x rank 16 units of an MLP module's [b; a] (11008 + 4096).</summary>
public static class KMeansTiming
{
    public static (int Points, int Dimension, double Milliseconds) Run(ComputeDevice device, int repeats = 10)
    {
        const int points = 128, dimension = 11008 + 4096, k = 16;
        manual_seed(3);
        using var x = randn(points, dimension, dtype: ScalarType.Float64, device: DeviceSelector.Resolve(device));
        var options = new KMeansOptions { Seed = 1, Restarts = 8 };
        KMeans.Fit(x, k, options);
        var times = new double[repeats];
        for (int r = 0; r < repeats; r++)
        {
            var sw = Stopwatch.StartNew();
            KMeans.Fit(x, k, options);
            times[r] = sw.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        return (points, dimension, times[repeats / 2]);
    }
}
