using System.Buffers.Binary;
using System.IO.Compression;
using CsCheck;

namespace MpiPipeline.Tests.Fuzz;

/// <summary>
/// The mutations both file fuzzers apply to valid files: none, truncation, a flipped byte, or a 32-bit header word
/// replaced by a size up to 2^31 - 1 (or another extreme); then, where asked, the result wrapped in gzip, the gzip
/// stream maybe damaged.
/// </summary>
internal static class FileMutations
{
    /// <summary>Which 32-bit words a replacement may hit.</summary>
    internal enum Words
    {
        /// <summary>One of an IDX file's dimensions, big-endian after the magic (idx1 has one at byte 4, idx3 three at 4, 8, 12).</summary>
        IdxDimensions,

        /// <summary>A word at any offset of the first 64 bytes, big- or little-endian: the headers of the other formats.</summary>
        AnyInFirst64Bytes,
    }

    /// <summary>One mutation, drawn with its position, value and replacement word.</summary>
    public static Gen<Func<byte[], byte[]>> Mutation(Words words, bool gzip) => Gen.Select(
        Gen.Int[0, 3], Gen.Int[0, 1 << 16], Gen.Byte, Gen.OneOf(Gen.Int[0, 64], Gen.Int, Gen.OneOf(int.MaxValue, int.MinValue, 0, -1)),
        Gen.Bool, Gen.Int[0, gzip ? 2 : 0],
        (kind, at, value, word, bigEndian, wrap) => (Func<byte[], byte[]>)(file => Wrap(Mutate(file, words, kind, at, value, word, bigEndian), wrap, at, value)));

    public static byte[] Gzip(byte[] data)
    {
        using var memory = new MemoryStream();
        using (var gzip = new GZipStream(memory, CompressionLevel.Fastest))
        {
            gzip.Write(data);
        }

        return memory.ToArray();
    }

    private static byte[] Mutate(byte[] file, Words words, int kind, int at, byte value, int word, bool bigEndian)
    {
        var copy = (byte[])file.Clone();
        switch (kind)
        {
            case 1:
                return copy[..(at % (copy.Length + 1))];
            case 2 when copy.Length > 0:
                // | 1: a flip that always changes the byte.
                copy[at % copy.Length] ^= (byte)(value | 1);
                break;
            case 3 when words == Words.IdxDimensions && copy.Length >= 8:
                BinaryPrimitives.WriteInt32BigEndian(copy.AsSpan(4 * (1 + at % ((Math.Min(copy.Length, 16) - 4) / 4))), word);
                break;
            case 3 when words == Words.AnyInFirst64Bytes && copy.Length >= 4:
                var offset = at % (Math.Min(copy.Length, 64) - 3);
                if (bigEndian)
                {
                    BinaryPrimitives.WriteInt32BigEndian(copy.AsSpan(offset), word);
                }
                else
                {
                    BinaryPrimitives.WriteInt32LittleEndian(copy.AsSpan(offset), word);
                }

                break;
        }

        return copy;
    }

    /// <summary>wrap 0: as it is; 1: gzip-compressed; 2: compressed, then a byte after gzip's 10-byte header flipped.</summary>
    private static byte[] Wrap(byte[] file, int wrap, int at, byte value)
    {
        if (wrap == 0)
        {
            return file;
        }

        var zipped = Gzip(file);
        if (wrap == 2 && zipped.Length > 12)
        {
            zipped[10 + at % (zipped.Length - 10)] ^= (byte)(value | 1);
        }

        return zipped;
    }
}
