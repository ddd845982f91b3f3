using System.Text;

namespace MpiPipeline.Telemetry;

/// <summary>
/// Writes a file (text as UTF-8 without a BOM) so that it is either absent, the old version, or complete: the text goes to <c>path.tmp</c>, is
/// flushed to disk, and is renamed over <c>path</c> (rename is atomic within a file system). A crash midway leaves
/// at most a <c>.tmp</c> file, never a partial file under the real name.
/// </summary>
internal static class AtomicFile
{
    public static void WriteAllText(string path, string text) =>
        WriteAllBytes(path, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text));

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        var temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }
}
