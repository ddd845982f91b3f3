using System.Buffers.Binary;
using System.IO.Compression;

namespace MpiPipeline.Tests.Data;

/// <summary>Writes small IDX files for the tests, plain or gzip-compressed, in a fresh temporary directory.</summary>
internal sealed class IdxFiles : IDisposable
{
    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("mpipipe-idx-").FullName;

    public static byte[] Header(int magic, params int[] dimensions)
    {
        var header = new byte[4 + 4 * dimensions.Length];
        BinaryPrimitives.WriteInt32BigEndian(header, magic);
        for (var i = 0; i < dimensions.Length; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4 + 4 * i), dimensions[i]);
        }

        return header;
    }

    public static byte[] Images(int count, int rows, int columns, Func<int, byte>? pixel = null)
    {
        var data = new byte[count * rows * columns];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = pixel?.Invoke(i) ?? (byte)(i * 7 % 256);
        }

        return [.. Header(0x803, count, rows, columns), .. data];
    }

    public static byte[] Labels(params byte[] labels) => [.. Header(0x801, labels.Length), .. labels];

    public string Write(string name, byte[] content, bool gzip = false)
    {
        var path = Path.Combine(Directory, name);
        if (gzip)
        {
            using var file = File.Create(path);
            using var compressor = new GZipStream(file, CompressionLevel.Fastest);
            compressor.Write(content);
        }
        else
        {
            File.WriteAllBytes(path, content);
        }

        return path;
    }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}
