using System.Text.RegularExpressions;

namespace LoraLego.Core.Units;

/// <summary>
/// A wildcard over module keys as PowerShell users write them: * any run of characters, ? one
/// character, the whole key matched, case-insensitive. Null or empty matches every module.
/// </summary>
public sealed class ModuleFilter
{
    private readonly Regex? _regex;

    public ModuleFilter(string? pattern)
    {
        Pattern = pattern;
        if (!string.IsNullOrEmpty(pattern))
            _regex = new Regex("^" + Regex.Escape(pattern).Replace(@"\*", ".*").Replace(@"\?", ".") + "$",
                RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
    }

    public string? Pattern { get; }

    public bool Matches(string moduleKey) => _regex?.IsMatch(moduleKey) ?? true;

    public override string ToString() => Pattern ?? "*";
}
