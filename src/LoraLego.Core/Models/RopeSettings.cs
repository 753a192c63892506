using System.Text.Json.Nodes;

namespace LoraLego.Core.Models;

/// <summary>
/// Rotary position embedding parameters: the base frequency and the scaling scheme. Transformers 5
/// writes them under "rope_parameters"; older configs have a top-level rope_theta and an optional
/// "rope_scaling" object. Supported rope types: default and llama3.
/// </summary>
public sealed record RopeSettings(
    double Theta,
    string RopeType,
    double Factor = 1,
    double LowFreqFactor = 1,
    double HighFreqFactor = 4,
    long OriginalMaxPositions = 8192)
{
    private const double DefaultTheta = 10000;

    /// <summary>Reads the rope fields of a config.json, refusing a rope type this runtime would compute wrongly.</summary>
    public static RopeSettings Parse(JsonObject config, string path)
    {
        var parameters = config["rope_parameters"] as JsonObject;
        var scaling = config["rope_scaling"] as JsonObject;
        double theta = ConfigJson.Number(parameters, "rope_theta", path)
            ?? ConfigJson.Number(config, "rope_theta", path)
            ?? DefaultTheta;
        // rope_parameters carries everything in transformers 5; before that rope_scaling did, and
        // its older spelling of rope_type was "type".
        var scheme = parameters ?? scaling;
        string ropeType = ConfigJson.Text(scheme, "rope_type", path) ?? ConfigJson.Text(scheme, "type", path) ?? "default";
        return ropeType switch
        {
            "default" => new RopeSettings(theta, ropeType),
            "llama3" => new RopeSettings(theta, ropeType,
                Require(scheme!, "factor", path),
                Require(scheme!, "low_freq_factor", path),
                Require(scheme!, "high_freq_factor", path),
                (long)Require(scheme!, "original_max_position_embeddings", path)),
            _ => throw new LoraException(LoraErrorKind.Unsupported, path,
                $"rope_type '{ropeType}' is not supported (supported: default, llama3)"),
        };
    }

    /// <summary>The rotary inverse frequencies, one per pair of head dimensions, in float64.</summary>
    public double[] InverseFrequencies(int headDim)
    {
        var inverse = new double[headDim / 2];
        for (int i = 0; i < inverse.Length; i++)
            inverse[i] = 1.0 / Math.Pow(Theta, (double)(2 * i) / headDim);
        return RopeType == "llama3" ? ApplyLlama3Scaling(inverse) : inverse;
    }

    // Llama 3.1's scheme: long wavelengths are slowed by Factor, short ones kept, and the band
    // between them interpolated smoothly.
    private double[] ApplyLlama3Scaling(double[] inverse)
    {
        double lowFreqWavelength = OriginalMaxPositions / LowFreqFactor;
        double highFreqWavelength = OriginalMaxPositions / HighFreqFactor;
        return inverse.Select(frequency =>
        {
            double wavelength = 2 * Math.PI / frequency;
            if (wavelength < highFreqWavelength)
                return frequency;
            if (wavelength > lowFreqWavelength)
                return frequency / Factor;
            double smooth = (OriginalMaxPositions / wavelength - LowFreqFactor) / (HighFreqFactor - LowFreqFactor);
            return (1 - smooth) * frequency / Factor + smooth * frequency;
        }).ToArray();
    }

    private static double Require(JsonObject scheme, string name, string path) =>
        ConfigJson.Number(scheme, name, path)
        ?? throw new LoraException(LoraErrorKind.Unsupported, path, $"rope_type llama3 needs '{name}' in its rope parameters");
}
