using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;

namespace LoraLego.Completion;

/// <summary>
/// Completes a name from an object already given to another parameter of the same command line
/// (for example the experts of the mixture in <c>-Mixture $mix</c>). PowerShell evaluates safe
/// expressions such as variables into fakeBoundParameters, so nothing runs that the user did not
/// write; with that parameter not yet given there is nothing to offer.
/// </summary>
public abstract class BoundValueCompleter<T>(string parameter) : IArgumentCompleter
{
    /// <summary>The names the bound object offers.</summary>
    protected abstract IEnumerable<string> NamesOf(T value);

    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        if (!fakeBoundParameters.Contains(parameter))
            return [];
        var pattern = WildcardPattern.Get(wordToComplete.Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
        return Values(fakeBoundParameters[parameter]).SelectMany(NamesOf).Distinct().Where(pattern.IsMatch).Order(StringComparer.Ordinal)
            .Select(name => new CompletionResult(Quote(name), name, CompletionResultType.ParameterValue, name));
    }

    private static IEnumerable<T> Values(object? bound) => LanguagePrimitives.GetEnumerable(PSObject.AsPSObject(bound).BaseObject) is { } many
        ? many.Cast<object?>().Select(o => PSObject.AsPSObject(o).BaseObject).OfType<T>()
        : PSObject.AsPSObject(bound).BaseObject is T one ? [one] : [];

    private static string Quote(string name) => name.Any(c => char.IsWhiteSpace(c) || "'\"$`;,(){}|&@#".Contains(c)) ? $"'{name.Replace("'", "''")}'" : name;
}
