using System.Buffers.Binary;
using System.IO.Compression;

namespace MpiPipeline.RankTests;

/// <summary>
/// The first <see cref="TrainCount"/> training and <see cref="TestCount"/> test samples of the installed Fashion-MNIST,
/// as uncompressed IDX files in a folder written once per test run, for <c>--data</c>. The loader cuts each set to
/// --train-samples / --test-samples after reading it and normalizes with fixed constants, so a run that takes at most
/// these counts trains on exactly the samples it would take from the installed files (the same parameters, bit for
/// bit), but each rank reads 7 MB instead of decompressing 30 MB: about 1.5 CPU-seconds less per rank and launch,
/// most of a small run's cost. The loader on the installed files stays covered by the tests that train without --data.
/// </summary>
[SetUpFixture]
public sealed class FashionMnistPrefix
{
    public const int TrainCount = 8192, TestCount = 1000;

    private const string Installed = "/usr/share/datasets/fashion-mnist";

    private static readonly Lazy<string> Folder = new(Write);

    /// <summary>The folder, for <c>--data</c> where the sample counts are given apart (at most the prefix's).</summary>
    public static string Location => Folder.Value;

    /// <summary><c>--data</c> on the prefix with <c>--train-samples</c> <paramref name="train"/> and <c>--test-samples</c> <paramref name="test"/>.</summary>
    public static string[] Samples(int train, int test)
    {
        if (train > TrainCount || test > TestCount)
        {
            // More than the prefix holds would silently train on fewer samples than asked: say so instead.
            throw new ArgumentOutOfRangeException(nameof(train), $"the prefix holds {TrainCount} training and {TestCount} test samples; asked for {train} and {test}");
        }

        return ["--data", Folder.Value, "--train-samples", train.ToString(), "--test-samples", test.ToString()];
    }

    [OneTimeTearDown]
    public void Remove()
    {
        if (Folder.IsValueCreated)
        {
            Directory.Delete(Folder.Value, recursive: true);
        }
    }

    private static string Write()
    {
        var folder = Directory.CreateTempSubdirectory("mpipipe-fashion-mnist-prefix-").FullName;
        foreach (var (prefix, count) in new[] { ("train", TrainCount), ("t10k", TestCount) })
        {
            Copy($"{prefix}-images-idx3-ubyte", folder, headerBytes: 16, count, sampleBytes: 28 * 28);
            Copy($"{prefix}-labels-idx1-ubyte", folder, headerBytes: 8, count, sampleBytes: 1);
        }

        return folder;
    }

    /// <summary>The installed file's header with its count (the second big-endian int) set to <paramref name="count"/>, and its first samples.</summary>
    private static void Copy(string name, string folder, int headerBytes, int count, int sampleBytes)
    {
        using var gzip = new GZipStream(File.OpenRead(Path.Combine(Installed, name + ".gz")), CompressionMode.Decompress);
        var bytes = new byte[headerBytes + count * sampleBytes];
        gzip.ReadExactly(bytes);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4, 4), count);
        File.WriteAllBytes(Path.Combine(folder, name), bytes);
    }
}
