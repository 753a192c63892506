using System.Collections;
using System.Globalization;
using System.Management.Automation;

namespace LoraLego.HelpGen;

/// <summary>
/// A parameter's default as the help shows it: the value its property holds on a new cmdlet
/// object, read from the cmdlet itself so that the help cannot disagree with the code (defaults
/// taken from Core's option types included). "None" where the cmdlet decides at run time.
/// </summary>
public static class DefaultValues
{
    public static string Of(CmdletInfo cmdlet, ParameterMetadata parameter)
    {
        if (cmdlet.ImplementingType.GetProperty(parameter.Name) is not { } property)
            return "None";
        object? instance = Activator.CreateInstance(cmdlet.ImplementingType);
        return Format(property.GetValue(instance));
    }

    private static string Format(object? value) => value switch
    {
        null => "None",
        SwitchParameter s => s.IsPresent ? "True" : "False",
        string { Length: 0 } => "None",
        string s => s,
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        IEnumerable e => e.Cast<object?>().ToList() is { Count: > 0 } items ? string.Join(", ", items.Select(Format)) : "None",
        _ => value.ToString() ?? "None",
    };
}
