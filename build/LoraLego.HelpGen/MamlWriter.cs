using System.Management.Automation;
using System.Xml.Linq;

namespace LoraLego.HelpGen;

/// <summary>
/// Writes PowerShell's MAML help: syntax, parameter types, positions, pipeline input and aliases
/// come from the cmdlet's own metadata, so they cannot drift from the code; the prose comes from
/// the markdown.
/// </summary>
public static class MamlWriter
{
    private static readonly XNamespace Msh = "http://msh";
    private static readonly XNamespace Maml = "http://schemas.microsoft.com/maml/2004/10";
    private static readonly XNamespace Command = "http://schemas.microsoft.com/maml/dev/command/2004/10";
    private static readonly XNamespace Dev = "http://schemas.microsoft.com/maml/dev/2004/10";

    private static readonly HashSet<string> Common = new(PSCmdlet.CommonParameters, StringComparer.OrdinalIgnoreCase);

    private static readonly Dictionary<string, string> OptionalCommon = new(StringComparer.OrdinalIgnoreCase)
    {
        ["WhatIf"] = "Shows what would happen if the cmdlet runs. The cmdlet is not run.",
        ["Confirm"] = "Prompts you for confirmation before running the cmdlet.",
    };

    public static XDocument Write(IEnumerable<(CmdletInfo Info, CmdletDoc Doc)> cmdlets, List<string> problems) =>
        new(new XDeclaration("1.0", "utf-8", null),
            new XElement(Msh + "helpItems", new XAttribute("schema", "maml"),
                new XAttribute(XNamespace.Xmlns + "maml", Maml), new XAttribute(XNamespace.Xmlns + "command", Command), new XAttribute(XNamespace.Xmlns + "dev", Dev),
                cmdlets.Select(c => CommandElement(c.Info, c.Doc, problems))));

    private static XElement CommandElement(CmdletInfo info, CmdletDoc doc, List<string> problems)
    {
        if (string.IsNullOrWhiteSpace(doc.Synopsis))
            problems.Add($"{info.Name}: no synopsis");
        if (doc.Examples.Count == 0)
            problems.Add($"{info.Name}: no example");
        var parameters = info.Parameters.Values.Where(p => !Common.Contains(p.Name) && !Hidden(p)).OrderBy(p => Position(p) ?? int.MaxValue).ThenBy(p => p.Name).ToList();
        foreach (var p in parameters.Where(p => !doc.Parameters.ContainsKey(p.Name) && !OptionalCommon.ContainsKey(p.Name)))
            problems.Add($"{info.Name}: -{p.Name} is not documented");
        foreach (var documented in doc.Parameters.Keys.Where(k => !info.Parameters.ContainsKey(k)))
            problems.Add($"{info.Name}: documents -{documented}, which it does not have");
        return new XElement(Command + "command",
            new XElement(Command + "details",
                new XElement(Command + "name", info.Name),
                new XElement(Command + "verb", info.Verb),
                new XElement(Command + "noun", info.Noun),
                new XElement(Maml + "description", Para(doc.Synopsis))),
            new XElement(Maml + "description", doc.Description.Select(Para)),
            new XElement(Command + "syntax", info.ParameterSets.Where(set => !set.Parameters.Any(p => p.Attributes.OfType<ParameterAttribute>().Any(a => a.DontShow)))
                .Select(set => SyntaxItem(info.Name, set))),
            new XElement(Command + "parameters", parameters.Select(p => ParameterElement(p, Describe(doc, p.Name), DefaultValues.Of(info, p)))),
            new XElement(Command + "inputTypes", doc.Inputs.Select(i => new XElement(Command + "inputType", TypeElement(i.Type), new XElement(Maml + "description", Para(i.Text))))),
            new XElement(Command + "returnValues", doc.Outputs.Select(o => new XElement(Command + "returnValue", TypeElement(o.Type), new XElement(Maml + "description", Para(o.Text))))),
            new XElement(Command + "examples", doc.Examples.Select((e, i) => new XElement(Command + "example",
                new XElement(Maml + "title", $"--------- Example {i + 1}: {e.Title} ---------"),
                new XElement(Dev + "code", e.Code),
                new XElement(Dev + "remarks", e.Remarks.Select(Para))))),
            new XElement(Command + "relatedLinks", doc.Related.Select(r => new XElement(Maml + "navigationLink", new XElement(Maml + "linkText", r)))));
    }

    // A parameter marked DontShow (the catch-all that turns wrong pipeline input into a clear error) is not documented.
    private static bool Hidden(ParameterMetadata p) => p.Attributes.OfType<ParameterAttribute>().Any(a => a.DontShow);

    private static IEnumerable<string> Describe(CmdletDoc doc, string name) =>
        doc.Parameters.TryGetValue(name, out var text) ? text : OptionalCommon.TryGetValue(name, out var common) ? [common] : [];

    private static XElement SyntaxItem(string name, CommandParameterSetInfo set) =>
        new(Command + "syntaxItem",
            new XElement(Maml + "name", name),
            set.Parameters.Where(p => !Common.Contains(p.Name)).OrderBy(p => p.Position < 0 ? int.MaxValue : p.Position).Select(p =>
                new XElement(Command + "parameter",
                    new XAttribute("required", p.IsMandatory ? "true" : "false"),
                    new XAttribute("position", p.Position < 0 ? "named" : p.Position.ToString()),
                    new XAttribute("pipelineInput", Pipeline(p.ValueFromPipeline, p.ValueFromPipelineByPropertyName)),
                    new XElement(Maml + "name", p.Name),
                    IsSwitch(p.ParameterType) ? null : new XElement(Command + "parameterValue", new XAttribute("required", "true"), TypeName(p.ParameterType)))));

    private static XElement ParameterElement(ParameterMetadata p, IEnumerable<string> description, string defaultValue)
    {
        var attributes = p.Attributes.OfType<ParameterAttribute>().ToList();
        bool required = attributes.Any(a => a.Mandatory);
        bool byValue = attributes.Any(a => a.ValueFromPipeline);
        bool byName = attributes.Any(a => a.ValueFromPipelineByPropertyName);
        bool globbing = p.Attributes.OfType<SupportsWildcardsAttribute>().Any();
        return new XElement(Command + "parameter",
            new XAttribute("required", required ? "true" : "false"),
            new XAttribute("position", Position(p)?.ToString() ?? "named"),
            new XAttribute("pipelineInput", Pipeline(byValue, byName)),
            new XAttribute("globbing", globbing ? "true" : "false"),
            new XAttribute("aliases", p.Aliases.Count == 0 ? "none" : string.Join(", ", p.Aliases)),
            new XElement(Maml + "name", p.Name),
            new XElement(Maml + "description", description.Select(Para), AllowedValues(p.ParameterType)),
            IsSwitch(p.ParameterType) ? null : new XElement(Command + "parameterValue", new XAttribute("required", "true"), TypeName(p.ParameterType)),
            TypeElement(p.ParameterType.FullName ?? p.ParameterType.Name),
            new XElement(Dev + "defaultValue", defaultValue));
    }

    private static XElement? AllowedValues(Type type)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        return t.IsEnum ? Para("Accepted values: " + string.Join(", ", Enum.GetNames(t)) + ".") : null;
    }

    private static int? Position(ParameterMetadata p) =>
        p.Attributes.OfType<ParameterAttribute>().Select(a => a.Position).Where(x => x >= 0).Cast<int?>().FirstOrDefault();

    private static string Pipeline(bool byValue, bool byName) => (byValue, byName) switch
    {
        (true, true) => "true (ByValue, ByPropertyName)",
        (true, false) => "true (ByValue)",
        (false, true) => "true (ByPropertyName)",
        _ => "false",
    };

    private static bool IsSwitch(Type t) => t == typeof(SwitchParameter);

    private static string TypeName(Type t)
    {
        t = Nullable.GetUnderlyingType(t) ?? t;
        return t.IsArray ? TypeName(t.GetElementType()!) + "[]" : t.Name;
    }

    private static XElement TypeElement(string name) => new(Dev + "type", new XElement(Maml + "name", name));

    private static XElement Para(string text) => new(Maml + "para", text);
}
