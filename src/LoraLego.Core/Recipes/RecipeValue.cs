using System.Globalization;
using System.Text.RegularExpressions;

namespace LoraLego.Core.Recipes;

/// <summary>
/// A recipe parameter that may differ per module, in mergekit's forms: a number; a gradient (a list of numbers
/// spread linearly over the layers, the first at layer 0, the last at the last layer); or a list of conditionals
/// <c>{filter, value}</c> where the first filter contained in the module's key wins and an entry without a filter
/// is the default.
/// </summary>
public sealed partial class RecipeValue
{
    private RecipeValue(string position, double? constant, IReadOnlyList<double>? gradient, IReadOnlyList<(string? Filter, RecipeValue Value)>? conditions)
    {
        Position = position;
        Constant = constant;
        Gradient = gradient;
        Conditions = conditions;
    }

    /// <summary>file:line:column of the value in the recipe, for errors.</summary>
    public string Position { get; }

    public double? Constant { get; }

    public IReadOnlyList<double>? Gradient { get; }

    public IReadOnlyList<(string? Filter, RecipeValue Value)>? Conditions { get; }

    public static RecipeValue Of(string position, double constant) => new(position, constant, null, null);

    public static RecipeValue OfGradient(string position, IReadOnlyList<double> values) => new(position, null, values, null);

    public static RecipeValue OfConditions(string position, IReadOnlyList<(string? Filter, RecipeValue Value)> conditions) => new(position, null, null, conditions);

    [GeneratedRegex(@"\.(?:layers|layer|h|blocks)\.(\d+)\.")]
    private static partial Regex LayerNumber();

    /// <summary>The layer a module key belongs to (model.layers.3.self_attn.q_proj: 3), or null.</summary>
    public static int? LayerOf(string moduleKey) =>
        LayerNumber().Match(moduleKey) is { Success: true } m ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : null;

    /// <summary>The value at one module.</summary>
    /// <param name="layerCount">The number of layers the adapters span (the largest layer number + 1).</param>
    /// <exception cref="LoraException">InvalidData, at this value's position, when no conditional matches the module or a
    /// gradient meets a module outside the layers.</exception>
    public double At(string moduleKey, int layerCount)
    {
        if (Constant is { } c)
            return c;
        if (Gradient is { } g)
        {
            if (LayerOf(moduleKey) is not { } layer)
                throw new LoraException(LoraErrorKind.InvalidData, Position, $"a gradient is spread over the layers, but module '{moduleKey}' is in none; give it a value with a filter");
            double t = layerCount <= 1 ? 0 : (double)layer * (g.Count - 1) / (layerCount - 1);
            int i = Math.Min((int)Math.Floor(t), g.Count - 1);
            return i == g.Count - 1 ? g[i] : g[i] + (g[i + 1] - g[i]) * (t - i);
        }
        foreach (var (filter, value) in Conditions!)
            if (filter is null || moduleKey.Contains(filter, StringComparison.Ordinal))
                return value.At(moduleKey, layerCount);
        throw new LoraException(LoraErrorKind.InvalidData, Position, $"no filter matches module '{moduleKey}' and there is no default (an entry without a filter)");
    }

    /// <summary>Refuses gradients that cannot be laid over <paramref name="layerCount"/> layers: fewer than two values, or more values than layers.</summary>
    public void CheckGradients(int layerCount)
    {
        if (Gradient is { } g && (g.Count < 2 || g.Count > Math.Max(layerCount, 2)))
            throw new LoraException(LoraErrorKind.InvalidData, Position,
                $"a gradient of {g.Count} values cannot be spread over the adapters' {layerCount} layers; give between 2 and {Math.Max(layerCount, 2)} values, or one number");
        foreach (var (_, value) in Conditions ?? [])
            value.CheckGradients(layerCount);
    }

    /// <summary>Every number in the value, for range checks.</summary>
    public IEnumerable<double> Numbers() =>
        Constant is { } c ? [c] : Gradient ?? Conditions!.SelectMany(p => p.Value.Numbers());
}
