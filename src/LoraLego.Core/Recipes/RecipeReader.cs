using System.Globalization;
using LoraLego.Core.Clustering;
using LoraLego.Core.Compute;
using LoraLego.Core.Formats;
using LoraLego.Core.Merging;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace LoraLego.Core.Recipes;

/// <summary>
/// Reads a merge recipe (YAML, one merge per document, documents separated by ---) and checks its shape: unknown
/// keys, values of the wrong type or out of range, options the method does not take. Every problem is a
/// <see cref="LoraException"/> (InvalidData) whose target is file:line:column.
/// </summary>
public sealed class RecipeReader
{
    private static readonly string[] DocumentKeys = ["name", "merge_method", "models", "adapters", "parameters", "dtype", "seed", "device", "output"];
    private static readonly string[] AdapterKeys = ["adapter", "model", "name", "parameters"];
    private static readonly string[] AdapterParameterKeys = ["weight", "density"];
    private static readonly string[] LegoKeys = ["weight", "rank", "k", "target", "parameter_reweight", "output_reweight", "norm", "space", "restarts", "max_iterations", "tolerance"];
    private static readonly string[] PeftKeys = ["weight", "density", "rank", "majority_sign_method", "clamp"];
    private static readonly string[] OutputKeys = ["path", "dtype"];

    private readonly string _file;

    private RecipeReader(string file) => _file = file;

    /// <summary>The documents of <paramref name="text"/>, in order.</summary>
    /// <param name="file">How errors name the recipe: its path, or a label such as &lt;recipe&gt; for text given inline.</param>
    public static IReadOnlyList<RecipeDocument> Parse(string text, string file)
    {
        var reader = new RecipeReader(file);
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            throw new LoraException(LoraErrorKind.InvalidData, reader.At(e.Start), $"not valid YAML: {Inner(e).Message}", e);
        }
        var documents = new List<RecipeDocument>();
        foreach (var document in stream.Documents)
        {
            if (document.RootNode is YamlScalarNode { Value: null or "" })
                continue;
            documents.Add(reader.Document(document.RootNode, documents.Count));
        }
        if (documents.Count == 0)
            throw new LoraException(LoraErrorKind.InvalidData, file, "the recipe has no documents; it needs at least merge_method and models");
        return documents;
    }

    // YamlDotNet wraps the scanner's message ("While scanning ...") in a semantic one; the inner one says what is wrong.
    private static Exception Inner(YamlException e) => e.InnerException is YamlException inner ? inner : e;

    private string At(Mark mark) => $"{_file}:{mark.Line}:{mark.Column}";

    private string At(YamlNode node) => At(node.Start);

    private LoraException Error(YamlNode node, string message) => new(LoraErrorKind.InvalidData, At(node), message);

    private RecipeDocument Document(YamlNode root, int index)
    {
        var map = Mapping(root, "a recipe document");
        var fields = Fields(map, DocumentKeys, "a recipe document");
        if (fields.ContainsKey("models") && fields.ContainsKey("adapters"))
            throw Error(fields["adapters"].Key, "give the adapters under 'models' or under 'adapters', not both");
        var methodNode = fields.TryGetValue("merge_method", out var m) ? m.Value : throw Error(root, "missing 'merge_method' (lego, or a PEFT method such as ties_svd)");
        string methodName = Text(methodNode, "merge_method");
        MergeMethod? method = null;
        if (!string.Equals(methodName, "lego", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                method = MergeMethods.FromPeftName(methodName);
            }
            catch (LoraException e)
            {
                throw Error(methodNode, e.Detail.Replace("combination type", "merge_method", StringComparison.Ordinal) + ", or lego");
            }
        }
        var adaptersNode = Either(fields, "models", "adapters")
            ?? throw Error(root, "missing 'models' (or 'adapters'): the list of adapters to merge");
        if (adaptersNode is not YamlSequenceNode list || list.Children.Count == 0)
            throw Error(adaptersNode, "'models' must be a list of adapters ('- adapter: path')");
        var adapters = list.Children.Select(Adapter).ToList();

        var output = fields.TryGetValue("output", out var o) ? Fields(Mapping(o.Value, "'output'"), OutputKeys, "'output'") : [];
        var outputPath = output.TryGetValue("path", out var p) ? Text(p.Value, "output path") : null;
        var dtype = output.TryGetValue("dtype", out var od) ? DType(od.Value) : fields.TryGetValue("dtype", out var d) ? DType(d.Value) : null;
        string name = fields.TryGetValue("name", out var n) ? Text(n.Value, "name")
            : outputPath is not null ? Path.GetFileName(Path.TrimEndingDirectorySeparator(outputPath)) : $"merge{index + 1}";

        var document = new RecipeDocument
        {
            Position = At(root),
            Method = method,
            MethodPosition = At(methodNode),
            Name = name,
            Adapters = adapters,
            Seed = fields.TryGetValue("seed", out var s) ? (long)Number(s.Value, "seed", integer: true) : null,
            Device = fields.TryGetValue("device", out var dev) ? DeviceOf(dev.Value) : ComputeDevice.Auto,
            OutputPath = outputPath,
            OutputPosition = p.Value is { } pn ? At(pn) : null,
            DType = dtype,
        };
        return fields.TryGetValue("parameters", out var parameters) ? WithParameters(document, Mapping(parameters.Value, "'parameters'")) : WithLegoDefaults(document);
    }

    private RecipeDocument WithParameters(RecipeDocument document, YamlMappingNode map)
    {
        var f = Fields(map, document.IsLego ? LegoKeys.Union(PeftKeys).ToArray() : PeftKeys.Union(LegoKeys).ToArray(), "'parameters'");
        string method = document.IsLego ? "lego" : document.Method!.Value.PeftName();
        foreach (var (key, (keyNode, _)) in f)
            if (!(document.IsLego ? LegoKeys : PeftKeys).Contains(key))
                throw Error(keyNode, $"'{key}' is not a parameter of {method}; it takes {string.Join(", ", document.IsLego ? LegoKeys : PeftKeys)}");
        int? rank = Either(f, "rank", "k") is { } r ? (int)Number(r, "rank", integer: true, min: 1) : null;
        var result = document with
        {
            Weight = f.TryGetValue("weight", out var w) ? Value(w.Value, "weight") : null,
            Density = f.TryGetValue("density", out var d) ? Value(d.Value, "density", 0, 1) : null,
            Rank = rank,
            MajoritySign = f.TryGetValue("majority_sign_method", out var ms) ? Choice<MajoritySign>(ms.Value, "majority_sign_method") : null,
            Clamp = f.TryGetValue("clamp", out var c) ? Number(c.Value, "clamp", min: 0, max: 1) : null,
        };
        if (!document.IsLego)
            return WithLegoDefaults(result);
        var defaults = new LegoOptions();
        var kmeans = defaults.Clustering.KMeans with
        {
            Seed = unchecked((ulong)(document.Seed ?? 0)),
            Restarts = f.TryGetValue("restarts", out var re) ? (int)Number(re.Value, "restarts", integer: true, min: 1) : defaults.Clustering.KMeans.Restarts,
            MaxIterations = f.TryGetValue("max_iterations", out var mi) ? (int)Number(mi.Value, "max_iterations", integer: true, min: 1) : defaults.Clustering.KMeans.MaxIterations,
            Tolerance = f.TryGetValue("tolerance", out var t) ? Number(t.Value, "tolerance", min: 0) : defaults.Clustering.KMeans.Tolerance,
        };
        return result with
        {
            Lego = defaults with
            {
                Clustering = defaults.Clustering with
                {
                    K = rank,
                    KMeans = kmeans,
                    Norm = f.TryGetValue("norm", out var no) ? NormOf(no.Value) : defaults.Clustering.Norm,
                    Space = f.TryGetValue("space", out var sp) ? Choice<ClusteringSpace>(sp.Value, "space") : defaults.Clustering.Space,
                    Device = document.Device,
                },
                Target = f.TryGetValue("target", out var ta) ? Choice<LegoTarget>(ta.Value, "target") : defaults.Target,
                ParameterReweight = f.TryGetValue("parameter_reweight", out var pr) ? Flag(pr.Value, "parameter_reweight") : defaults.ParameterReweight,
                OutputReweight = f.TryGetValue("output_reweight", out var or) ? Flag(or.Value, "output_reweight") : defaults.OutputReweight,
            },
        };
    }

    // A Lego document without parameters still takes its seed and device from the document.
    private static RecipeDocument WithLegoDefaults(RecipeDocument document)
    {
        if (document.IsLego && document.Lego is null)
            return document with
            {
                Lego = new LegoOptions
                {
                    Clustering = new RankClusterOptions { KMeans = new KMeansOptions { Seed = unchecked((ulong)(document.Seed ?? 0)) }, Device = document.Device },
                },
            };
        return document;
    }

    private RecipeAdapter Adapter(YamlNode node)
    {
        var f = Fields(Mapping(node, "an entry of 'models'"), AdapterKeys, "an entry of 'models'");
        if (f.ContainsKey("adapter") && f.ContainsKey("model"))
            throw Error(f["model"].Key, "give 'adapter' or 'model', not both");
        var source = Either(f, "adapter", "model")
            ?? throw Error(node, "missing 'adapter': the adapter's folder (or the name of an earlier document's result)");
        var parameters = f.TryGetValue("parameters", out var p) ? Fields(Mapping(p.Value, "an adapter's 'parameters'"), AdapterParameterKeys, "an adapter's 'parameters'") : [];
        return new RecipeAdapter(Text(source, "adapter"), At(source),
            f.TryGetValue("name", out var n) ? Text(n.Value, "name") : null,
            parameters.TryGetValue("weight", out var w) ? Value(w.Value, "weight") : null,
            parameters.TryGetValue("density", out var d) ? Value(d.Value, "density", 0, 1) : null);
    }

    // The value of a key that has a synonym (models/adapters, adapter/model, rank/k).
    private static YamlNode? Either(Dictionary<string, (YamlNode Key, YamlNode Value)> fields, string name, string synonym) =>
        fields.TryGetValue(name, out var a) ? a.Value : fields.TryGetValue(synonym, out var b) ? b.Value : null;

    private YamlMappingNode Mapping(YamlNode node, string what) =>
        node as YamlMappingNode ?? throw Error(node, $"{what} must be a mapping of 'key: value' lines");

    private Dictionary<string, (YamlNode Key, YamlNode Value)> Fields(YamlMappingNode map, string[] allowed, string what)
    {
        var fields = new Dictionary<string, (YamlNode, YamlNode)>(StringComparer.Ordinal);
        foreach (var (keyNode, value) in map.Children)
        {
            string key = keyNode is YamlScalarNode { Value: { } k } ? k : throw Error(keyNode, $"keys of {what} must be plain words");
            if (!allowed.Contains(key))
                throw Error(keyNode, $"unknown key '{key}' in {what}; expected {string.Join(", ", allowed)}");
            fields[key] = (keyNode, value);
        }
        return fields;
    }

    private string Text(YamlNode node, string what) =>
        node is YamlScalarNode { Value: { Length: > 0 } text } ? text : throw Error(node, $"{what} must be a non-empty text");

    private double Number(YamlNode node, string what, bool integer = false, double min = double.NegativeInfinity, double max = double.PositiveInfinity)
    {
        if (node is not YamlScalarNode scalar || scalar.Value is null)
            throw Error(node, $"{what} must be a number");
        if (scalar.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted)
            throw Error(node, $"{what} is the text '{scalar.Value}'; write the number without quotes");
        if (!double.TryParse(scalar.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
            throw Error(node, $"{what} '{scalar.Value}' is not a number");
        if (integer && value != Math.Floor(value))
            throw Error(node, $"{what} {scalar.Value} must be a whole number");
        if (value < min || value > max)
            throw Error(node, double.IsInfinity(max) ? $"{what} {scalar.Value} must be at least {min}" : $"{what} {scalar.Value} is outside [{min}, {max}]");
        return value;
    }

    // A number, a gradient [v0, v1, ...], or conditionals [{filter: text, value: ...}, {value: ...}].
    private RecipeValue Value(YamlNode node, string what, double min = double.NegativeInfinity, double max = double.PositiveInfinity)
    {
        if (node is not YamlSequenceNode list)
            return RecipeValue.Of(At(node), Number(node, what, min: min, max: max));
        if (list.Children.Count == 0)
            throw Error(node, $"{what} is an empty list; give a number, a gradient of numbers, or filters");
        if (list.Children.All(c => c is YamlScalarNode))
            return RecipeValue.OfGradient(At(node), list.Children.Select(c => Number(c, $"{what} (gradient)", min: min, max: max)).ToList());
        var conditions = new List<(string?, RecipeValue)>();
        foreach (var entry in list.Children)
        {
            var f = Fields(Mapping(entry, $"a conditional {what}"), ["filter", "value"], $"a conditional {what}");
            var value = f.TryGetValue("value", out var v) ? Value(v.Value, what, min, max) : throw Error(entry, $"a conditional {what} needs 'value'");
            conditions.Add((f.TryGetValue("filter", out var filter) ? Text(filter.Value, "filter") : null, value));
        }
        return RecipeValue.OfConditions(At(node), conditions);
    }

    private bool Flag(YamlNode node, string what) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain, Value: { } v } && bool.TryParse(v, out var flag) ? flag : throw Error(node, $"{what} must be true or false");

    private T Choice<T>(YamlNode node, string what) where T : struct, Enum
    {
        string text = Text(node, what);
        return Enum.TryParse<T>(text.Replace("_", "", StringComparison.Ordinal), ignoreCase: true, out var value) && Enum.IsDefined(value)
            ? value
            : throw Error(node, $"{what} '{text}' is not one of {string.Join(", ", Enum.GetNames<T>().Select(n => n.ToLowerInvariant()))}");
    }

    private ComputeDevice DeviceOf(YamlNode node)
    {
        string text = Text(node, "device");
        try
        {
            return ComputeDevice.Parse(text);
        }
        catch (LoraException e)
        {
            throw Error(node, $"device '{text}' {e.Detail}");
        }
    }

    private UnitNorm NormOf(YamlNode node) => Text(node, "norm").ToLowerInvariant() switch
    {
        "linf" or "linfinity" => UnitNorm.LInfinity,
        "l2" => UnitNorm.L2,
        var other => throw Error(node, $"norm '{other}' is not one of linf, l2"),
    };

    private SafetensorsDType? DType(YamlNode node) => Text(node, "dtype").ToLowerInvariant() switch
    {
        "float32" or "fp32" => SafetensorsDType.F32,
        "float16" or "fp16" => SafetensorsDType.F16,
        "bfloat16" or "bf16" => SafetensorsDType.BF16,
        "keep" => null,
        var other => throw Error(node, $"dtype '{other}' is not one of float32, float16, bfloat16, keep"),
    };
}
