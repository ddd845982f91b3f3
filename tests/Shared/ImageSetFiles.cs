using System.Buffers.Binary;
using MpiPipeline.Data;

namespace MpiPipeline.TestData;

/// <summary>
/// Small image classification sets written in the formats <c>--dataset</c> reads (IDX, CIFAR binary, .npy), so that
/// the tests need no download. The images are learnable: class k's prototype is bright or dark per 4x4 block and
/// channel (a hash of k, the channel and the block), plus deterministic noise; label i is (7 i + seed) mod K.
/// Compiled into both test projects.
/// </summary>
internal static class ImageSetFiles
{
    /// <summary>N x C x H x W pixel bytes and N labels.</summary>
    public static (byte[] Pixels, byte[] Labels) Generate(int count, int channels, int side, int classes, int seed)
    {
        var size = channels * side * side;
        var pixels = new byte[count * size];
        var labels = new byte[count];
        for (var i = 0; i < count; i++)
        {
            var k = (7 * i + seed) % classes;
            labels[i] = (byte)k;
            for (var v = 0; v < size; v++)
            {
                var (c, h, w) = (v / (side * side), v / side % side, v % side);
                var bright = (Hash(k, c, h / 4, w / 4) & 1) == 1;
                var noise = (int)(Hash(seed, i, v, 7) % 81) - 40;
                pixels[i * size + v] = (byte)Math.Clamp((bright ? 190 : 60) + noise, 0, 255);
            }
        }

        return (pixels, labels);
    }

    /// <summary>An IDX array: magic 0x0000TTDD (TT = 0x08 bytes, 0x0D floats), the sizes, then the big-endian data.</summary>
    public static byte[] Idx(int[] dimensions, ReadOnlySpan<byte> bytes, byte type = 0x08)
    {
        var header = new byte[4 + 4 * dimensions.Length];
        header[2] = type;
        header[3] = (byte)dimensions.Length;
        for (var d = 0; d < dimensions.Length; d++)
        {
            BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4 + 4 * d), dimensions[d]);
        }

        return [.. header, .. bytes];
    }

    /// <summary>Floats as an IDX float32 array (big-endian).</summary>
    public static byte[] IdxFloats(int[] dimensions, ReadOnlySpan<float> values)
    {
        var data = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleBigEndian(data.AsSpan(4 * i), values[i]);
        }

        return Idx(dimensions, data, 0x0D);
    }

    /// <summary>The four IDX files of a set of C x side x side images (C = 1: N x H x W files, else N x C x H x W).</summary>
    public static void WriteIdxSet(string folder, int channels, int side, int classes, int trainCount, int testCount)
    {
        foreach (var (prefix, count, seed) in new[] { ("train", trainCount, 1), ("t10k", testCount, 2) })
        {
            var (pixels, labels) = Generate(count, channels, side, classes, seed);
            int[] dimensions = channels == 1 ? [count, side, side] : [count, channels, side, side];
            File.WriteAllBytes(Path.Combine(folder, $"{prefix}-images-idx{dimensions.Length}-ubyte"), Idx(dimensions, pixels));
            File.WriteAllBytes(Path.Combine(folder, $"{prefix}-labels-idx1-ubyte"), Idx([count], labels));
        }
    }

    /// <summary>CIFAR binary records: the label byte(s) (<paramref name="coarse"/> first for CIFAR-100), then 3072 pixel bytes.</summary>
    public static byte[] CifarRecords(byte[] pixels, byte[] labels, byte[]? coarse = null)
    {
        const int image = 3 * 32 * 32;
        var labelBytes = coarse is null ? 1 : 2;
        var records = new byte[labels.Length * (labelBytes + image)];
        for (var i = 0; i < labels.Length; i++)
        {
            var record = records.AsSpan(i * (labelBytes + image), labelBytes + image);
            if (coarse is not null)
            {
                record[0] = coarse[i];
            }

            record[labelBytes - 1] = labels[i];
            pixels.AsSpan(i * image, image).CopyTo(record[labelBytes..]);
        }

        return records;
    }

    /// <summary>A CIFAR-10 folder: <paramref name="batches"/> training batches of <paramref name="perBatch"/> and a test batch.</summary>
    public static void WriteCifar10(string folder, int batches, int perBatch, int testCount)
    {
        for (var b = 1; b <= batches; b++)
        {
            var (pixels, labels) = Generate(perBatch, 3, 32, 10, b);
            File.WriteAllBytes(Path.Combine(folder, $"data_batch_{b}.bin"), CifarRecords(pixels, labels));
        }

        var (testPixels, testLabels) = Generate(testCount, 3, 32, 10, 99);
        File.WriteAllBytes(Path.Combine(folder, "test_batch.bin"), CifarRecords(testPixels, testLabels));
    }

    /// <summary>An npy folder: float32 x of N x <paramref name="sampleShape"/> (the generated pixels / 255) and int64 y.</summary>
    public static void WriteNpySet(string folder, int[] sampleShape, int classes, int trainCount, int testCount)
    {
        var size = sampleShape.Aggregate(1, (a, b) => a * b);
        foreach (var (part, count, seed) in new[] { ("train", trainCount, 1), ("test", testCount, 2) })
        {
            var (pixels, labels) = Generate(count, 1, (int)Math.Ceiling(Math.Sqrt(size)), classes, seed);
            var side = (int)Math.Ceiling(Math.Sqrt(size));
            var x = new byte[count * size * 4];
            var y = new byte[count * 8];
            for (var i = 0; i < count; i++)
            {
                for (var v = 0; v < size; v++)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(x.AsSpan((i * size + v) * 4), pixels[i * side * side + v] / 255f);
                }

                BinaryPrimitives.WriteInt64LittleEndian(y.AsSpan(i * 8), labels[i]);
            }

            File.WriteAllBytes(Path.Combine(folder, $"x_{part}.npy"), NpyFile.Encode("<f4", [count, .. sampleShape], x));
            File.WriteAllBytes(Path.Combine(folder, $"y_{part}.npy"), NpyFile.Encode("<i8", [count], y));
        }
    }

    private static uint Hash(int a, int b, int c, int d)
    {
        var h = (uint)(a * 73856093) ^ (uint)(b * 19349663) ^ (uint)(c * 83492791) ^ (uint)(d * 2654435761);
        h ^= h >> 13;
        h *= 0x5bd1e995;
        return h ^ (h >> 15);
    }
}
