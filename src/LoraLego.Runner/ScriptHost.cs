using System.Collections.ObjectModel;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Security;
using System.Text;
using System.Text.RegularExpressions;

namespace LoraLego.Runner;

/// <summary>
/// The engine's default host cannot prompt (-Confirm throws) and discards host output
/// (-WhatIf text, Out-Default tables). This host records both, optionally echoes them to a
/// console, and answers prompts with a chosen reply, so scripts run here show what a user of
/// pwsh would see.
/// </summary>
public sealed partial class ScriptHost : PSHost
{
    private readonly ScriptHostUI _ui;

    public ScriptHost(TextWriter? echo = null) => _ui = new ScriptHostUI(echo);

    public override CultureInfo CurrentCulture => CultureInfo.InvariantCulture;
    public override CultureInfo CurrentUICulture => CultureInfo.InvariantCulture;
    public override Guid InstanceId { get; } = Guid.NewGuid();
    public override string Name => "LoraLegoScriptHost";
    public override Version Version => new(1, 0);
    public override PSHostUserInterface UI => _ui;

    /// <summary>Everything written to the host since the last Clear.</summary>
    public string Text => _ui.Text.ToString();

    /// <summary>The choice index PromptForChoice returns (0 = Yes for ShouldProcess prompts).</summary>
    public int ChoiceReply { get => _ui.ChoiceReply; set => _ui.ChoiceReply = value; }

    public int Prompts => _ui.Prompts;

    public void Clear()
    {
        _ui.Text.Clear();
        _ui.Prompts = 0;
    }

    public override void EnterNestedPrompt() => throw new NotSupportedException();
    public override void ExitNestedPrompt() => throw new NotSupportedException();
    public override void NotifyBeginApplication() { }
    public override void NotifyEndApplication() { }
    public override void SetShouldExit(int exitCode) { }

    private sealed class ScriptHostUI(TextWriter? echo) : PSHostUserInterface
    {
        public StringBuilder Text { get; } = new();
        public int ChoiceReply { get; set; }
        public int Prompts { get; set; }

        public override PSHostRawUserInterface RawUI { get; } = new ScriptRawUI();

        public override int PromptForChoice(string caption, string message, Collection<ChoiceDescription> choices, int defaultChoice)
        {
            Prompts++;
            Text.AppendLine($"{caption}: {message}");
            return ChoiceReply;
        }

        public override Dictionary<string, PSObject> Prompt(string caption, string message, Collection<FieldDescription> descriptions) => throw new NotSupportedException();
        public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName) => throw new NotSupportedException();
        public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName, PSCredentialTypes allowedCredentialTypes, PSCredentialUIOptions options) => throw new NotSupportedException();
        public override string ReadLine() => "";
        public override SecureString ReadLineAsSecureString() => new();
        public override void Write(string value) => Append(value);
        public override void Write(ConsoleColor foregroundColor, ConsoleColor backgroundColor, string value) => Append(value);
        public override void WriteLine(string value) => Append(value + Environment.NewLine);
        public override void WriteErrorLine(string value) => Append(value + Environment.NewLine);
        public override void WriteDebugLine(string message) => Append("DEBUG: " + message + Environment.NewLine);
        public override void WriteVerboseLine(string message) => Append("VERBOSE: " + message + Environment.NewLine);
        public override void WriteWarningLine(string message) => Append("WARNING: " + message + Environment.NewLine);
        public override void WriteProgress(long sourceId, ProgressRecord record) { }

        // Formatting styles table headers with ANSI codes whatever OutputRendering says when the
        // host is not a console; tests and logs want the plain text a terminal would show.
        private void Append(string text)
        {
            text = Ansi().Replace(text, "");
            Text.Append(text);
            echo?.Write(text);
        }
    }

    private sealed class ScriptRawUI : PSHostRawUserInterface
    {
        public override ConsoleColor BackgroundColor { get; set; }
        public override Size BufferSize { get; set; } = new(160, 1000);
        public override Coordinates CursorPosition { get; set; }
        public override int CursorSize { get; set; }
        public override ConsoleColor ForegroundColor { get; set; }
        public override bool KeyAvailable => false;
        public override Size MaxPhysicalWindowSize => new(160, 1000);
        public override Size MaxWindowSize => new(160, 1000);
        public override Coordinates WindowPosition { get; set; }
        public override Size WindowSize { get; set; } = new(160, 1000);
        public override string WindowTitle { get; set; } = "";
        public override void FlushInputBuffer() { }
        public override BufferCell[,] GetBufferContents(Rectangle rectangle) => throw new NotSupportedException();
        public override KeyInfo ReadKey(ReadKeyOptions options) => throw new NotSupportedException();
        public override void ScrollBufferContents(Rectangle source, Coordinates destination, Rectangle clip, BufferCell fill) { }
        public override void SetBufferContents(Coordinates origin, BufferCell[,] contents) { }
        public override void SetBufferContents(Rectangle rectangle, BufferCell fill) { }
    }

    [GeneratedRegex("\u001b\\[[0-9;?]*[A-Za-z]")]
    private static partial Regex Ansi();
}
