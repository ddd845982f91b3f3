using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace MpiPipeline.Dicod;

/// <summary>
/// NumPy's .npy format (format versions 1.0 to 3.0): the magic "\x93NUMPY", a version, a header length, and a Python
/// dict literal naming 'descr' (here little-endian float32 '&lt;f4' or float64 '&lt;f8'), 'fortran_order' (False only)
/// and 'shape', then the values in C order. What <c>numpy.save</c> writes for a float array.
/// </summary>
internal static partial class NpyFile
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>The array's shape and its values as doubles; <paramref name="flag"/> names the option in messages.</summary>
    public static (int[] Shape, double[] Values) Read(string path, string flag)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InputException($"{flag} {path}: cannot read it ({ex.Message})");
        }

        if (bytes.Length < 10 || !bytes.AsSpan(0, 6).SequenceEqual(Magic))
        {
            throw new InputException($"{flag} {path}: not a .npy file (no \\x93NUMPY magic); save the array with numpy.save");
        }

        var major = bytes[6];
        int headerLength, offset;
        if (major == 1)
        {
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8, 2));
            offset = 10;
        }
        else if (major is 2 or 3 && bytes.Length >= 12)
        {
            headerLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8, 4));
            offset = 12;
        }
        else
        {
            throw new InputException($"{flag} {path}: .npy format version {major} is not supported (1, 2 or 3)");
        }

        if (offset + headerLength > bytes.Length)
        {
            throw new InputException($"{flag} {path}: the .npy header is cut short");
        }

        var header = Encoding.Latin1.GetString(bytes, offset, headerLength);
        var descr = DescrPattern().Match(header);
        var shapeMatch = ShapePattern().Match(header);
        if (!descr.Success || !shapeMatch.Success)
        {
            throw new InputException($"{flag} {path}: the .npy header names no 'descr' or 'shape': {header.Trim()}");
        }

        if (FortranPattern().IsMatch(header))
        {
            throw new InputException($"{flag} {path}: a Fortran-ordered array; save a C-ordered one (numpy.ascontiguousarray)");
        }

        var size = descr.Groups[1].Value switch
        {
            "<f4" => 4,
            "<f8" => 8,
            var other => throw new InputException($"{flag} {path}: dtype '{other}' is not supported: little-endian float32 '<f4' or float64 '<f8'"),
        };
        var shape = shapeMatch.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var count = shape.Aggregate(1L, (a, b) => a * b);
        var data = offset + headerLength;
        if (bytes.Length - data != count * size)
        {
            throw new InputException($"{flag} {path}: shape ({string.Join(", ", shape)}) needs {count * size} bytes of data, the file holds {bytes.Length - data}");
        }

        var values = new double[count];
        for (var i = 0; i < count; i++)
        {
            values[i] = size == 4
                ? BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(data + (i * 4), 4))
                : BinaryPrimitives.ReadDoubleLittleEndian(bytes.AsSpan(data + (i * 8), 8));
        }

        return (shape, values);
    }

    /// <summary>Writes a float64 C-ordered .npy (format 1.0), as numpy.save would.</summary>
    public static byte[] Encode(int[] shape, ReadOnlySpan<double> values)
    {
        var dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape);
        var dict = $"{{'descr': '<f8', 'fortran_order': False, 'shape': ({dims}), }}";
        var unpadded = 10 + dict.Length + 1;
        var header = dict + new string(' ', (64 - (unpadded % 64)) % 64) + "\n";
        var bytes = new byte[10 + header.Length + (values.Length * 8)];
        Magic.CopyTo(bytes, 0);
        bytes[6] = 1;
        bytes[7] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8, 2), (ushort)header.Length);
        Encoding.Latin1.GetBytes(header, bytes.AsSpan(10));
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(10 + header.Length + (i * 8), 8), values[i]);
        }

        return bytes;
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();

    [GeneratedRegex(@"'fortran_order'\s*:\s*True")]
    private static partial Regex FortranPattern();
}
