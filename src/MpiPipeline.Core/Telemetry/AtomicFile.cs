using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace MpiPipeline.Telemetry;

/// <summary>
/// The one way the program writes a file: the file under its real name is either absent, the old version, or
/// complete. The content goes to a temporary file beside it (<c>.name.PID.RANDOM.tmp</c>: unique per writer, so two
/// runs writing the same path never share one), is flushed to disk, renamed over the real name (atomic within a file
/// system), and the folder is flushed so that the rename itself survives a crash. A failed write (a full disk, a
/// writer that throws) removes its temporary file and leaves the old file untouched; the failure is an
/// <see cref="InputException"/> naming the path, reported by the rank that wrote (<c>sameOnEveryRank: false</c>).
/// A missing folder is created, for every file the program writes.
/// </summary>
internal static partial class AtomicFile
{
    public static void WriteAllText(string path, string text) =>
        WriteAllBytes(path, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text));

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        unsafe
        {
            fixed (byte* pointer = bytes)
            {
                var (start, length) = ((nint)pointer, bytes.Length);
                Write(path, stream => stream.Write(new ReadOnlySpan<byte>((void*)start, length)));
            }
        }
    }

    /// <summary>Writes what <paramref name="write"/> puts into the stream (a file opened for this write alone).</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full)!;
        var temporary = TemporaryName(full);
        try
        {
            Directory.CreateDirectory(directory);
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, full, overwrite: true);
        }
        catch (Exception ex)
        {
            TryDelete(temporary);
            if (ex is IOException or UnauthorizedAccessException)
            {
                throw new InputException($"cannot write {path}: {ex.Message}", sameOnEveryRank: false);
            }

            throw;
        }

        FlushDirectory(directory);
    }

    /// <summary>
    /// Fails now, with the message a write would fail with later, when <paramref name="path"/> cannot be written: its
    /// folder is created as a write would create it, and a probe file (a temporary name, removed) is written there.
    /// Runs call this for every output before their first step, so that a run never ends with its results lost.
    /// </summary>
    public static void CheckWritable(string path, string flag)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            throw new InputException($"{flag} {path}: is a folder; give a file name", sameOnEveryRank: false);
        }

        var probe = TemporaryName(full);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InputException($"{flag} {path}: cannot be written: {ex.Message}", sameOnEveryRank: false);
        }
        finally
        {
            TryDelete(probe);
        }
    }

    /// <summary>A name in the target's folder that no other writer uses: the process id and 64 random bits.</summary>
    internal static string TemporaryName(string fullPath) =>
        Path.Combine(Path.GetDirectoryName(fullPath)!,
            $".{Path.GetFileName(fullPath)}.{Environment.ProcessId}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}.tmp");

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The write's own error is the one to report; a temporary file that cannot be removed cannot be helped.
        }
    }

    /// <summary>fsync of the folder, so that the rename is on disk too. File systems that cannot sync a folder
    /// (EINVAL) make it a no-op there; .NET has no portable call for it.</summary>
    private static void FlushDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return;
        }

        var fd = Libc.open(directory, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            return;
        }

        Libc.fsync(fd);
        Libc.close(fd);
    }

    private static partial class Libc
    {
        [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
        public static partial int open(string path, int flags);

        [LibraryImport("libc")]
        public static partial int fsync(int fd);

        [LibraryImport("libc")]
        public static partial int close(int fd);
    }
}
