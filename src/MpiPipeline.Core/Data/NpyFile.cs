using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace MpiPipeline.Data;

/// <summary>A .npy array: its dtype ('descr'), its shape, and its data bytes in C order.</summary>
internal sealed record NpyArray(string Path, string Descr, int[] Shape, ReadOnlyMemory<byte> Data)
{
    /// <summary>Elements: the product of the shape (1 for a scalar's empty shape).</summary>
    public long Count => Shape.Aggregate(1L, (product, d) => product * d);
}

/// <summary>
/// NumPy's .npy format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html), the subset
/// <c>numpy.save</c> writes for a plain array: the magic "\x93NUMPY", format version 1.0, 2.0 or 3.0, a header
/// length (2 bytes in 1.0, 4 after), then the header, a Python dict literal with the keys 'descr' (a dtype string),
/// 'fortran_order' (True or False) and 'shape' (a tuple of integers), and then the values. The project parses the
/// header itself. Read: little-endian (or byte-sized) numbers in C order; big-endian dtypes ('&gt;f4'), Fortran-ordered
/// arrays, structured dtypes and pickled objects are refused with a message saying how to save a readable one.
/// </summary>
internal static class NpyFile
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Bytes per element of the dtypes read (little-endian, or one byte where the order does not matter).</summary>
    private static readonly Dictionary<string, int> ElementBytes = new(StringComparer.Ordinal)
    {
        ["|u1"] = 1, ["|i1"] = 1, ["<u2"] = 2, ["<i2"] = 2, ["<u4"] = 4, ["<i4"] = 4, ["<u8"] = 8, ["<i8"] = 8,
        ["<f4"] = 4, ["<f8"] = 8,
    };

    /// <summary>
    /// The array in <paramref name="path"/>; every problem is an <see cref="InputException"/> beginning with the path
    /// (after <paramref name="flag"/>, the option that named the file, where there is one).
    /// </summary>
    public static NpyArray Read(string path, string? flag = null)
    {
        var where = flag is null ? path : $"{flag} {path}";
        ReadOnlyMemory<byte> file;
        try
        {
            file = IdxReader.ReadDecompressed(path);
        }
        catch (InputException ex) when (flag is not null)
        {
            throw new InputException($"{flag} {ex.Message}");
        }

        var bytes = file.Span;
        if (bytes.Length < 10 || !bytes[..6].SequenceEqual(Magic))
        {
            throw new InputException($"{where}: not a .npy file (no \\x93NUMPY magic); save the array with numpy.save");
        }

        var major = bytes[6];
        int headerLength, offset;
        if (major == 1)
        {
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes[8..]);
            offset = 10;
        }
        else if (major is 2 or 3 && bytes.Length >= 12)
        {
            headerLength = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]), int.MaxValue);
            offset = 12;
        }
        else
        {
            throw new InputException($"{where}: .npy format version {major} is not supported (1, 2 or 3)");
        }

        if ((long)offset + headerLength > bytes.Length)
        {
            throw new InputException($"{where}: truncated: the .npy header announces {headerLength} bytes, the file holds {bytes.Length - offset} after the prefix");
        }

        var header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(bytes.Slice(offset, headerLength)).Trim();
        var dict = new HeaderParser(header, where).Dict();
        var descr = dict.TryGetValue("descr", out var d) ? d as string
            ?? throw new InputException($"{where}: a structured dtype ({Show(d)}) is not supported; save a plain numeric array") : null;
        if (descr is null || !dict.TryGetValue("shape", out var s) || s is not int[] shape || !dict.TryGetValue("fortran_order", out var f) || f is not bool fortran)
        {
            throw new InputException($"{where}: the .npy header needs 'descr' (a string), 'fortran_order' (True or False) and 'shape' (a tuple): {header}");
        }

        if (fortran)
        {
            throw new InputException($"{where}: a Fortran-ordered array; save a C-ordered one (numpy.ascontiguousarray)");
        }

        if (!ElementBytes.TryGetValue(descr, out var size))
        {
            var hint = descr.StartsWith('>') ? "a big-endian dtype: save x.astype(x.dtype.newbyteorder('<'))" : "read: " + string.Join(", ", ElementBytes.Keys);
            throw new InputException($"{where}: dtype '{descr}' is not supported ({hint})");
        }

        var data = file[(offset + headerLength)..];
        var needed = shape.Aggregate((Int128)size, (product, dimension) => product * dimension);
        if (data.Length != needed)
        {
            throw new InputException($"{where}: {(data.Length < needed ? "truncated: " : "")}shape ({string.Join(", ", shape)}) of '{descr}' needs {needed} bytes of data, " +
                $"the file holds {data.Length}");
        }

        return new NpyArray(path, descr, shape, data);
    }

    /// <summary>The array's shape and its values as doubles (float32 or float64 arrays only); <paramref name="flag"/> names the option in messages.</summary>
    public static (int[] Shape, double[] Values) ReadDoubles(string path, string flag)
    {
        var array = Read(path, flag);
        if (array.Descr is not ("<f4" or "<f8"))
        {
            throw new InputException($"{flag} {path}: dtype '{array.Descr}' is not supported: little-endian float32 '<f4' or float64 '<f8'");
        }

        var values = new double[array.Count];
        var span = array.Data.Span;
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = array.Descr == "<f4" ? BinaryPrimitives.ReadSingleLittleEndian(span[(i * 4)..]) : BinaryPrimitives.ReadDoubleLittleEndian(span[(i * 8)..]);
        }

        return (array.Shape, values);
    }

    /// <summary>The values of a float32 or float64 array as float32.</summary>
    public static float[] ToFloats(NpyArray array)
    {
        var span = array.Data.Span;
        var values = GC.AllocateUninitializedArray<float>(checked((int)array.Count));
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = array.Descr switch
            {
                "<f4" => BinaryPrimitives.ReadSingleLittleEndian(span[(i * 4)..]),
                "<f8" => (float)BinaryPrimitives.ReadDoubleLittleEndian(span[(i * 8)..]),
                _ => throw new ArgumentException($"{array.Descr} is not a float dtype", nameof(array)),
            };
        }

        return values;
    }

    /// <summary>The values of an integer array, widened to long (uint64 above long's range is clamped to long.MaxValue).</summary>
    public static long[] ToIntegers(NpyArray array)
    {
        var span = array.Data.Span;
        var values = new long[array.Count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = array.Descr switch
            {
                "|u1" => span[i],
                "|i1" => (sbyte)span[i],
                "<u2" => BinaryPrimitives.ReadUInt16LittleEndian(span[(i * 2)..]),
                "<i2" => BinaryPrimitives.ReadInt16LittleEndian(span[(i * 2)..]),
                "<u4" => BinaryPrimitives.ReadUInt32LittleEndian(span[(i * 4)..]),
                "<i4" => BinaryPrimitives.ReadInt32LittleEndian(span[(i * 4)..]),
                "<u8" => (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(span[(i * 8)..]), long.MaxValue),
                "<i8" => BinaryPrimitives.ReadInt64LittleEndian(span[(i * 8)..]),
                _ => throw new ArgumentException($"{array.Descr} is not an integer dtype", nameof(array)),
            };
        }

        return values;
    }

    public static bool IsInteger(string descr) => descr[1] is 'i' or 'u';

    /// <summary>A C-ordered .npy (format 1.0) of <paramref name="descr"/> with the raw little-endian <paramref name="data"/>, as numpy.save writes it.</summary>
    public static byte[] Encode(string descr, int[] shape, ReadOnlySpan<byte> data)
    {
        var dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape);
        var dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({dims}), }}";
        var unpadded = 10 + dict.Length + 1;
        var header = dict + new string(' ', (64 - (unpadded % 64)) % 64) + "\n";
        var bytes = new byte[10 + header.Length + data.Length];
        Magic.CopyTo(bytes, 0);
        bytes[6] = 1;
        bytes[7] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8, 2), (ushort)header.Length);
        Encoding.Latin1.GetBytes(header, bytes.AsSpan(10));
        data.CopyTo(bytes.AsSpan(10 + header.Length));
        return bytes;
    }

    /// <summary>Writes a float64 C-ordered .npy (format 1.0), as numpy.save would.</summary>
    public static byte[] Encode(int[] shape, ReadOnlySpan<double> values)
    {
        var data = new byte[values.Length * 8];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(i * 8), values[i]);
        }

        return Encode("<f8", shape, data);
    }

    private static string Show(object? value) => value switch
    {
        null => "None",
        string s => $"'{s}'",
        int[] t => $"({string.Join(", ", t)})",
        bool b => b ? "True" : "False",
        _ => "a list",
    };

    /// <summary>
    /// The header's dict literal: string keys; values a string ('...' or "..."), True, False, None, a tuple of
    /// non-negative integers, or a list (a structured dtype: read only to be refused).
    /// </summary>
    private sealed class HeaderParser(string text, string where)
    {
        private int position;

        public Dictionary<string, object?> Dict()
        {
            var dict = new Dictionary<string, object?>(StringComparer.Ordinal);
            Expect('{');
            while (!Accept('}'))
            {
                var key = Value() as string ?? throw Bad("a dict key must be a string");
                Expect(':');
                dict[key] = Value();
                if (!Accept(','))
                {
                    Expect('}');
                    break;
                }
            }

            Skip();
            if (position != text.Length)
            {
                throw Bad("text after the dict");
            }

            return dict;
        }

        private object? Value()
        {
            Skip();
            if (position >= text.Length)
            {
                throw Bad("the header ends inside the dict");
            }

            var c = text[position];
            if (c is '\'' or '"')
            {
                var end = text.IndexOf(c, position + 1);
                if (end < 0)
                {
                    throw Bad("a string is not closed");
                }

                var value = text[(position + 1)..end];
                position = end + 1;
                return value;
            }

            if (c == '(')
            {
                position++;
                var items = new List<int>();
                while (!Accept(')'))
                {
                    items.Add(Integer());
                    if (!Accept(','))
                    {
                        Expect(')');
                        break;
                    }
                }

                return items.ToArray();
            }

            if (c == '[')
            {
                var depth = 0;
                do
                {
                    depth += text[position] switch { '[' => 1, ']' => -1, _ => 0 };
                    position++;
                }
                while (depth > 0 && position < text.Length);
                return new List<object>();
            }

            foreach (var (word, value) in new (string, object?)[] { ("True", true), ("False", false), ("None", null) })
            {
                if (string.CompareOrdinal(text, position, word, 0, word.Length) == 0)
                {
                    position += word.Length;
                    return value;
                }
            }

            throw Bad($"unexpected '{c}' at character {position}");
        }

        private int Integer()
        {
            Skip();
            var start = position;
            while (position < text.Length && char.IsAsciiDigit(text[position]))
            {
                position++;
            }

            if (!int.TryParse(text.AsSpan(start, position - start), NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                throw Bad($"a shape holds non-negative integers up to {int.MaxValue}, found '{(position > start ? text[start..position] : text[start..Math.Min(start + 8, text.Length)])}'");
            }

            return value;
        }

        private void Skip()
        {
            while (position < text.Length && char.IsWhiteSpace(text[position]))
            {
                position++;
            }
        }

        private bool Accept(char c)
        {
            Skip();
            if (position < text.Length && text[position] == c)
            {
                position++;
                return true;
            }

            return false;
        }

        private void Expect(char c)
        {
            if (!Accept(c))
            {
                throw Bad($"expected '{c}' at character {position}");
            }
        }

        private InputException Bad(string problem) => new($"{where}: the .npy header is not a dict literal numpy writes ({problem}): {text}");
    }
}
