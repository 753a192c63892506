namespace LoraLego.HelpGen;

/// <summary>One cmdlet's help as written in docs/cmdlets/&lt;Name&gt;.md.</summary>
public sealed class CmdletDoc
{
    public string Name { get; init; } = "";
    public string Synopsis { get; set; } = "";
    public List<string> Description { get; } = [];
    public Dictionary<string, List<string>> Parameters { get; } = new(StringComparer.OrdinalIgnoreCase);
    public List<(string Title, string Code, List<string> Remarks)> Examples { get; } = [];
    public List<(string Type, string Text)> Inputs { get; } = [];
    public List<(string Type, string Text)> Outputs { get; } = [];
    public List<string> Related { get; } = [];

    /// <summary>
    /// Reads the markdown: "## Synopsis", "## Description", "## Parameters" with "### -Name",
    /// "## Examples" with "### title" and a fenced code block, "## Inputs"/"## Outputs" with
    /// "### type", "## Related" with "- name" items. Paragraphs are separated by blank lines.
    /// </summary>
    public static CmdletDoc Parse(string name, string markdown)
    {
        var doc = new CmdletDoc { Name = name };
        string section = "", sub = "";
        List<string>? paragraphs = null;
        var current = new List<string>();
        string? code = null;
        bool inCode = false;
        void Flush()
        {
            if (current.Count > 0 && paragraphs is not null)
                paragraphs.Add(string.Join(" ", current).Trim());
            current.Clear();
        }
        foreach (var raw in markdown.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (line.StartsWith("```", StringComparison.Ordinal))
            {
                if (inCode)
                {
                    doc.Examples[^1] = (doc.Examples[^1].Title, code!.TrimEnd('\n'), doc.Examples[^1].Remarks);
                    inCode = false;
                }
                else
                {
                    Flush();
                    inCode = true;
                    code = "";
                }
                continue;
            }
            if (inCode)
            {
                code += line + "\n";
                continue;
            }
            if (line.StartsWith("## ", StringComparison.Ordinal))
            {
                Flush();
                section = line[3..].Trim().ToLowerInvariant();
                sub = "";
                paragraphs = section == "description" ? doc.Description : section == "synopsis" ? [] : null;
                continue;
            }
            if (line.StartsWith("### ", StringComparison.Ordinal))
            {
                Flush();
                sub = line[4..].Trim();
                paragraphs = [];
                switch (section)
                {
                    case "parameters":
                        doc.Parameters[sub.TrimStart('-')] = paragraphs;
                        break;
                    case "examples":
                        doc.Examples.Add((sub, "", paragraphs));
                        break;
                    case "inputs":
                        doc.Inputs.Add((sub, ""));
                        break;
                    case "outputs":
                        doc.Outputs.Add((sub, ""));
                        break;
                }
                continue;
            }
            if (section == "related" && line.StartsWith("- ", StringComparison.Ordinal))
            {
                doc.Related.Add(line[2..].Trim());
                continue;
            }
            if (line.Trim().Length == 0)
            {
                Flush();
                continue;
            }
            if (section == "synopsis")
                doc.Synopsis = (doc.Synopsis + " " + line.Trim()).Trim();
            else if (section is "inputs" or "outputs")
            {
                var list = section == "inputs" ? doc.Inputs : doc.Outputs;
                list[^1] = (list[^1].Type, (list[^1].Text + " " + line.Trim()).Trim());
            }
            else
                current.Add(line.Trim());
        }
        Flush();
        return doc;
    }
}
