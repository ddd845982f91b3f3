using System.Buffers.Binary;
using System.IO.Compression;

namespace MpiPipeline.Data;

/// <summary>Images of an IDX3 file: <see cref="Count"/> images of <see cref="Rows"/> x <see cref="Columns"/> bytes.</summary>
/// <param name="Pixels">Count * Rows * Columns bytes, image after image, row after row.</param>
internal sealed record IdxImages(string Path, int Count, int Rows, int Columns, ReadOnlyMemory<byte> Pixels);

/// <summary>An IDX array: its sizes (the count first) and its values, as bytes or (float files) as floats.</summary>
internal sealed record IdxArray(string Path, int[] Dimensions, ReadOnlyMemory<byte> Bytes, float[]? Floats);

/// <summary>
/// Reads the IDX files of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a big-endian header - magic
/// <c>0x0000_TT_DD</c> (TT = element type, 0x08 for unsigned bytes; DD = number of dimensions), then one 32-bit size
/// per dimension - followed by the data. Files may be gzip-compressed (detected by the magic bytes 1f 8b, not by the
/// name). Every problem with a file is an <see cref="InputException"/> naming the file and saying what is wrong; a
/// data file is the same on every rank, so rank 0 alone reports it.
/// </summary>
internal static class IdxReader
{
    /// <summary>Unsigned bytes, 3 dimensions (count, rows, columns).</summary>
    public const int ImagesMagic = 0x00000803;

    /// <summary>Unsigned bytes, 1 dimension (count).</summary>
    public const int LabelsMagic = 0x00000801;

    private const int ImagesHeaderBytes = 16;
    private const int LabelsHeaderBytes = 8;

    public static IdxImages ReadImages(string path)
    {
        var file = ReadDecompressed(path);
        var header = RequireHeader(path, file, ImagesHeaderBytes, "images (idx3)");
        RequireMagic(path, header, ImagesMagic, "images (idx3, unsigned bytes)");
        var count = ReadDimension(path, header, 1, "image count");
        var rows = ReadDimension(path, header, 2, "row count");
        var columns = ReadDimension(path, header, 3, "column count");
        // Three 31-bit dimensions multiply past long: a corrupt header must still get the right byte count.
        var pixels = RequireDataLength(path, file[ImagesHeaderBytes..], (Int128)count * rows * columns,
            $"{count} images of {rows}x{columns}");
        return new IdxImages(path, count, rows, columns, pixels);
    }

    public static byte[] ReadLabels(string path)
    {
        var file = ReadDecompressed(path);
        var header = RequireHeader(path, file, LabelsHeaderBytes, "labels (idx1)");
        RequireMagic(path, header, LabelsMagic, "labels (idx1, unsigned bytes)");
        var count = ReadDimension(path, header, 1, "label count");
        return RequireDataLength(path, file[LabelsHeaderBytes..], count, $"{count} labels").ToArray();
    }

    /// <summary>Element type code of unsigned bytes in the magic's third byte.</summary>
    public const byte UnsignedByte = 0x08;

    /// <summary>Element type code of big-endian IEEE float32.</summary>
    public const byte Float32 = 0x0D;

    /// <summary>
    /// Any IDX array of unsigned bytes or float32 with <paramref name="minDimensions"/> to <paramref name="maxDimensions"/>
    /// dimensions: its sizes and its data (bytes as they are; floats converted from big-endian).
    /// </summary>
    public static IdxArray ReadArray(string path, int minDimensions, int maxDimensions, string what)
    {
        var file = ReadDecompressed(path);
        RequireHeader(path, file, 4, what);
        var magic = file.Span[..4];
        if (magic[0] != 0 || magic[1] != 0)
        {
            throw new InputException(
                $"{path}: wrong magic number for IDX {what}: expected 0x0000TTDD (TT the element type, DD the dimensions), " +
                $"found 0x{BinaryPrimitives.ReadInt32BigEndian(magic):X8}; the file is not an IDX file.");
        }

        var (type, dimensions) = (magic[2], magic[3]);
        var size = type switch
        {
            UnsignedByte => 1,
            Float32 => 4,
            _ => throw new InputException(
                $"{path}: IDX element type 0x{type:X2} ({TypeName(type)}) is not supported for {what}: unsigned byte (0x08) or float (0x0D)."),
        };
        if (dimensions < minDimensions || dimensions > maxDimensions)
        {
            throw new InputException(
                $"{path}: an IDX array of {dimensions} dimension(s); {what} take {minDimensions} to {maxDimensions} (the count first).");
        }

        var headerBytes = 4 + 4 * dimensions;
        var header = RequireHeader(path, file, headerBytes, what);
        var sizes = new int[dimensions];
        Int128 elements = 1;
        for (var d = 0; d < dimensions; d++)
        {
            sizes[d] = ReadDimension(path, header, d + 1, $"dimension {d}");
            elements *= sizes[d];
        }

        var data = RequireDataLength(path, file[headerBytes..], elements * size,
            $"{string.Join(" x ", sizes)} {(size == 1 ? "unsigned bytes" : "floats")}");
        float[]? floats = null;
        if (type == Float32)
        {
            floats = GC.AllocateUninitializedArray<float>(data.Length / 4);
            var span = data.Span;
            for (var i = 0; i < floats.Length; i++)
            {
                floats[i] = BinaryPrimitives.ReadSingleBigEndian(span[(4 * i)..]);
            }
        }

        return new IdxArray(path, sizes, floats is null ? data : default, floats);
    }

    private static string TypeName(byte type) => type switch
    {
        0x09 => "signed byte",
        0x0B => "int16",
        0x0C => "int32",
        0x0E => "float64",
        _ => "unknown",
    };

    /// <summary>The whole file, decompressed when it starts with the gzip magic 1f 8b.</summary>
    internal static ReadOnlyMemory<byte> ReadDecompressed(string path)
    {
        if (!File.Exists(path))
        {
            throw new InputException($"{path}: file not found.");
        }

        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            Span<byte> start = stackalloc byte[2];
            var startLength = file.ReadAtLeast(start, 2, throwOnEndOfStream: false);
            file.Position = 0;
            if (startLength < 2 || start[0] != 0x1f || start[1] != 0x8b)
            {
                return ReadToEnd(path, file, file.Length);
            }

            var sizeHint = GzipSizeHint(file);
            using var gzip = new GZipStream(file, CompressionMode.Decompress);
            return ReadToEnd(path, gzip, sizeHint);
        }
        catch (InvalidDataException)
        {
            // Only gzip decoding throws this here. Its own words describe the deflate stream's bits (a damaged block
            // reads "unsupported compression method"), which says nothing useful to someone holding a bad download.
            throw new InputException($"{path}: corrupt gzip file: its compressed data cannot be decoded (damaged or truncated); replace the file.");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InputException($"{path}: cannot be read: {ex.Message}");
        }
    }

    /// <summary>
    /// Reads until the end into one array, growing it if needed: the allocation follows the bytes that are really
    /// there, never a size claimed by a (possibly corrupt) header.
    /// </summary>
    private static ReadOnlyMemory<byte> ReadToEnd(string path, Stream stream, long sizeHint)
    {
        // One byte beyond the hint, so a correct hint ends in a single pass with the end-of-stream read.
        var buffer = GC.AllocateUninitializedArray<byte>((int)Math.Clamp(sizeHint + 1, 1 << 12, Array.MaxLength));
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (buffer.Length == Array.MaxLength)
                {
                    throw new InputException($"{path}: larger than {Array.MaxLength} bytes{(stream is GZipStream ? " once decompressed" : "")}, more than this reader can hold.");
                }

                Array.Resize(ref buffer, (int)Math.Min(2L * buffer.Length, Array.MaxLength));
            }

            var read = stream.Read(buffer, length, buffer.Length - length);
            if (read == 0)
            {
                return buffer.AsMemory(0, length);
            }

            length += read;
        }
    }

    /// <summary>The gzip trailer's ISIZE (uncompressed size mod 2^32): only a hint, as a truncated file has no trailer.</summary>
    private static long GzipSizeHint(FileStream file)
    {
        const long fallbackRatio = 4;
        if (file.Length < 18)
        {
            return 0;
        }

        Span<byte> trailer = stackalloc byte[4];
        file.Position = file.Length - 4;
        file.ReadExactly(trailer);
        file.Position = 0;
        long isize = BinaryPrimitives.ReadUInt32LittleEndian(trailer);
        return isize >= file.Length / 2 && isize <= 64 * file.Length ? isize : fallbackRatio * file.Length;
    }

    private static ReadOnlySpan<byte> RequireHeader(string path, ReadOnlyMemory<byte> file, int headerBytes, string kind)
    {
        if (file.Length < headerBytes)
        {
            throw new InputException(
                $"{path}: truncated IDX {kind} file: expected a {headerBytes}-byte header, found {file.Length} bytes.");
        }

        return file.Span[..headerBytes];
    }

    private static void RequireMagic(string path, ReadOnlySpan<byte> header, int expected, string kind)
    {
        var found = BinaryPrimitives.ReadInt32BigEndian(header);
        if (found != expected)
        {
            throw new InputException(
                $"{path}: wrong magic number for IDX {kind}: expected 0x{expected:X8}, found 0x{found:X8}." +
                (found == LabelsMagic || found == ImagesMagic ? " Images and labels files may be swapped." : ""));
        }
    }

    private static int ReadDimension(string path, ReadOnlySpan<byte> header, int index, string what)
    {
        var value = BinaryPrimitives.ReadInt32BigEndian(header[(4 * index)..]);
        if (value < 0)
        {
            throw new InputException($"{path}: corrupt IDX header: {what} is {(uint)value}, larger than {int.MaxValue}.");
        }

        return value;
    }

    private static ReadOnlyMemory<byte> RequireDataLength(string path, ReadOnlyMemory<byte> data, Int128 expected, string what)
    {
        if (data.Length < expected)
        {
            throw new InputException(
                $"{path}: truncated file: the header announces {what}, expected {expected} bytes of data, found {data.Length}.");
        }

        if (data.Length > expected)
        {
            throw new InputException(
                $"{path}: the header announces {what}, expected {expected} bytes of data, found {data.Length} " +
                $"({data.Length - expected} bytes too many); the file is corrupt or not an IDX file.");
        }

        return data;
    }
}
