using System.Buffers.Binary;
using System.Diagnostics;

namespace MpiPipeline.RankTests;

/// <summary>
/// An error only a non-zero rank sees - here one rank's corrupt copy of the data, launched MPMD-style with its own
/// --data - is printed once by that rank, with its rank, and the whole job exits non-zero promptly.
/// </summary>
[TestFixture]
[Parallelizable(ParallelScope.None)]
public sealed class ErrorsFromAnyRankTests
{
    private string good = "";
    private string corrupt = "";

    [OneTimeSetUp]
    public void WriteDataSets()
    {
        var root = Directory.CreateTempSubdirectory("mpipipe-any-rank-").FullName;
        good = Directory.CreateDirectory(Path.Combine(root, "good")).FullName;
        corrupt = Directory.CreateDirectory(Path.Combine(root, "corrupt")).FullName;
        foreach (var directory in new[] { good, corrupt })
        {
            WriteIdx(directory, "train", 128);
            WriteIdx(directory, "t10k", 32);
        }

        // Cut the corrupt copy's training images short: the header announces more images than the file holds.
        var images = Path.Combine(corrupt, "train-images-idx3-ubyte");
        File.WriteAllBytes(images, File.ReadAllBytes(images)[..^1000]);
    }

    [OneTimeTearDown]
    public void RemoveDataSets() => Directory.Delete(Path.GetDirectoryName(good)!, recursive: true);

    public static IEnumerable<MpiFlavor> Flavors => MpiFlavor.All;

    [TestCaseSource(nameof(Flavors))]
    public void CorruptDataOnOneRankIsReportedByThatRank(MpiFlavor flavor)
    {
        string[] train = ["train", "--algo", "psgd", "--model", "mlp", "--batch", "32", "--epochs", "1", "--threads", "1"];
        var result = MpiLauncher.Run(flavor.Launcher,
            [
                .. flavor.Flags,
                "-n", "1", "dotnet", MpiLauncher.Mpipipe, .. train, "--data", good, ":",
                "-n", "1", "dotnet", MpiLauncher.Mpipipe, .. train, "--data", corrupt,
            ],
            TimeSpan.FromSeconds(60), flavor.Environment);

        Assert.That(result.TimedOut, Is.False, result.ToString());
        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.ToString());
        Assert.That(result.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)), result.ToString());
        var images = Path.Combine(corrupt, "train-images-idx3-ubyte");
        Assert.That(MpiLauncher.Count(result.Output, $"rank 1: {images}: truncated file"), Is.EqualTo(1), result.ToString());
        Assert.That(MpiLauncher.Count(result.Output, images), Is.EqualTo(1), result.ToString());
    }

    private static void WriteIdx(string directory, string prefix, int count)
    {
        var images = new byte[16 + count * 28 * 28];
        BinaryPrimitives.WriteInt32BigEndian(images, 0x803);
        BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(4), count);
        BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(8), 28);
        BinaryPrimitives.WriteInt32BigEndian(images.AsSpan(12), 28);
        for (var i = 16; i < images.Length; i++)
        {
            images[i] = (byte)(i * 7);
        }

        var labels = new byte[8 + count];
        BinaryPrimitives.WriteInt32BigEndian(labels, 0x801);
        BinaryPrimitives.WriteInt32BigEndian(labels.AsSpan(4), count);
        for (var i = 0; i < count; i++)
        {
            labels[8 + i] = (byte)(i % 10);
        }

        File.WriteAllBytes(Path.Combine(directory, $"{prefix}-images-idx3-ubyte"), images);
        File.WriteAllBytes(Path.Combine(directory, $"{prefix}-labels-idx1-ubyte"), labels);
    }
}
