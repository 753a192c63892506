using System;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace LoraLego.Build
{
    /// <summary>Sets VER_FLG_WEAK on one symbol-version requirement of an ELF64 shared library.</summary>
    public class WeakenGlibcxxRequirement : Task
    {
        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const ushort VerFlgWeak = 0x2;

        [Required] public ITaskItem[] Libraries { get; set; }

        [Required] public string Version { get; set; }

        public override bool Execute()
        {
            if (SystemProvides(Version))
            {
                Log.LogMessage(MessageImportance.Low, "system libstdc++ provides {0}; nothing to patch", Version);
                return true;
            }
            foreach (var item in Libraries)
            {
                string path = item.GetMetadata("FullPath");
                string result = Patch(path, Version);
                Log.LogMessage(MessageImportance.Normal, "{0}: {1}", path, result);
            }
            return !Log.HasLoggedErrors;
        }

        private static bool SystemProvides(string version)
        {
            string[] candidates =
            {
                "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6",
                "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
            };
            var needle = Encoding.ASCII.GetBytes(version + "\0");
            foreach (var c in candidates.Where(File.Exists))
            {
                var bytes = File.ReadAllBytes(c);
                if (IndexOf(bytes, needle) >= 0)
                    return true;
                return false;
            }
            return false;
        }

        private static int IndexOf(byte[] hay, byte[] needle)
        {
            for (int i = 0; i + needle.Length <= hay.Length; i++)
            {
                int j = 0;
                while (j < needle.Length && hay[i + j] == needle[j]) j++;
                if (j == needle.Length) return i;
            }
            return -1;
        }

        private string Patch(string path, string version)
        {
            var elf = File.ReadAllBytes(path);
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[4] != 2 || elf[5] != 1)
                return "not a little-endian ELF64 file; left alone";
            long shoff = BitConverter.ToInt64(elf, 0x28);
            int shentsize = BitConverter.ToUInt16(elf, 0x3a);
            int shnum = BitConverter.ToUInt16(elf, 0x3c);
            for (int s = 0; s < shnum; s++)
            {
                long sh = shoff + (long)s * shentsize;
                if (BitConverter.ToUInt32(elf, (int)sh + 4) != ShtGnuVerneed)
                    continue;
                long offset = BitConverter.ToInt64(elf, (int)sh + 0x18);
                int link = (int)BitConverter.ToUInt32(elf, (int)sh + 0x28);
                long strOffset = BitConverter.ToInt64(elf, (int)(shoff + (long)link * shentsize) + 0x18);
                long need = offset;
                while (true)
                {
                    int count = BitConverter.ToUInt16(elf, (int)need + 2);
                    long aux = need + BitConverter.ToUInt32(elf, (int)need + 8);
                    for (int a = 0; a < count; a++)
                    {
                        long nameOffset = strOffset + BitConverter.ToUInt32(elf, (int)aux + 8);
                        if (ReadString(elf, nameOffset) == version)
                        {
                            ushort flags = BitConverter.ToUInt16(elf, (int)aux + 4);
                            if ((flags & VerFlgWeak) != 0)
                                return version + " already weak";
                            BitConverter.GetBytes((ushort)(flags | VerFlgWeak)).CopyTo(elf, (int)aux + 4);
                            string temp = path + ".patching";
                            File.WriteAllBytes(temp, elf);
                            File.Copy(temp, path, true);
                            File.Delete(temp);
                            return "marked " + version + " weak";
                        }
                        uint nextAux = BitConverter.ToUInt32(elf, (int)aux + 12);
                        if (nextAux == 0) break;
                        aux += nextAux;
                    }
                    uint next = BitConverter.ToUInt32(elf, (int)need + 12);
                    if (next == 0) break;
                    need += next;
                }
            }
            return "no " + version + " requirement; left alone";
        }

        private static string ReadString(byte[] bytes, long offset)
        {
            int end = (int)offset;
            while (end < bytes.Length && bytes[end] != 0) end++;
            return Encoding.ASCII.GetString(bytes, (int)offset, end - (int)offset);
        }
    }
}
