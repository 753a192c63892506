using System.Management.Automation;
using LoraLego.Core.Surgery;

namespace LoraLego.Commands;

/// <summary>Write-Progress records for the module-by-module surgery cmdlets.</summary>
internal static class SurgeryProgressRecords
{
    public static ProgressRecord Of(string activity, SurgeryProgress p) =>
        new(1, activity, $"{p.Module} ({p.Index + 1} of {p.Count})") { PercentComplete = (int)(100L * p.Index / Math.Max(1, p.Count)) };

    public static ProgressRecord Done(string activity) => new(1, activity, "done") { RecordType = ProgressRecordType.Completed };
}
