using MpiPipeline.Data;
using MpiPipeline.Mpi;

namespace MpiPipeline.Tests.Data;

/// <summary>The IDX reader on small generated files: both encodings, and every error naming the file and the fault.</summary>
[TestFixture]
public sealed class IdxReaderTests
{
    private IdxFiles files = null!;

    [SetUp]
    public void CreateDirectory() => files = new IdxFiles();

    [TearDown]
    public void DeleteDirectory() => files.Dispose();

    [TestCase(false)]
    [TestCase(true)]
    public void ReadsImages(bool gzip)
    {
        var path = files.Write("images", IdxFiles.Images(3, 2, 4), gzip);

        var images = IdxReader.ReadImages(path);

        Assert.That((images.Count, images.Rows, images.Columns), Is.EqualTo((3, 2, 4)));
        Assert.That(images.Pixels.ToArray(), Is.EqualTo(Enumerable.Range(0, 24).Select(i => (byte)(i * 7 % 256))));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void ReadsLabels(bool gzip)
    {
        var path = files.Write("labels.gz", IdxFiles.Labels(9, 0, 3, 255), gzip);

        Assert.That(IdxReader.ReadLabels(path), Is.EqualTo(new byte[] { 9, 0, 3, 255 }));
    }

    [Test]
    public void GzipIsDetectedByContentNotName()
    {
        var plainNamedGz = files.Write("plain.gz", IdxFiles.Labels(1, 2));
        var gzipWithoutSuffix = files.Write("compressed", IdxFiles.Labels(3, 4), gzip: true);

        Assert.That(IdxReader.ReadLabels(plainNamedGz), Is.EqualTo(new byte[] { 1, 2 }));
        Assert.That(IdxReader.ReadLabels(gzipWithoutSuffix), Is.EqualTo(new byte[] { 3, 4 }));
    }

    [Test]
    public void ReadsEmptyFiles()
    {
        var path = files.Write("labels", IdxFiles.Labels());
        Assert.That(IdxReader.ReadLabels(path), Is.Empty);
    }

    [Test]
    public void MissingFileNamesThePath()
    {
        var path = Path.Combine(files.Directory, "nothing-here");
        var ex = Assert.Throws<InputException>(() => IdxReader.ReadImages(path))!;
        Assert.That(ex.Message, Does.Contain(path).And.Contain("not found"));
        Assert.That(ex.SameOnEveryRank, Is.True, "a data file is the same on every rank: rank 0 alone reports it");
    }

    [Test]
    public void WrongMagicSaysExpectedAndFound()
    {
        var path = files.Write("images", [.. IdxFiles.Header(0x0000_0D03, 1, 1, 1), 0, 0, 0, 0]);
        var ex = Assert.Throws<InputException>(() => IdxReader.ReadImages(path))!;
        Assert.That(ex.Message, Does.Contain(path).And.Contain("wrong magic").And.Contain("expected 0x00000803").And.Contain("found 0x00000D03"));
    }

    [Test]
    public void SwappedImagesAndLabelsAreNamed()
    {
        var path = files.Write("labels", IdxFiles.Images(1, 2, 2));
        var ex = Assert.Throws<InputException>(() => IdxReader.ReadLabels(path))!;
        Assert.That(ex.Message, Does.Contain("expected 0x00000801, found 0x00000803").And.Contain("swapped"));
    }

    [Test]
    public void TruncatedDataSaysExpectedAndFoundBytes()
    {
        var whole = IdxFiles.Images(2, 3, 3);
        var path = files.Write("images", whole[..^5]);
        var ex = Assert.Throws<InputException>(() => IdxReader.ReadImages(path))!;
        Assert.That(ex.Message, Does.Contain(path).And.Contain("truncated").And.Contain("expected 18 bytes of data, found 13"));
    }

    [Test]
    public void TruncatedHeaderIsReported()
    {
        var path = files.Write("images", IdxFiles.Images(2, 3, 3)[..10]);
        var ex = Assert.Throws<InputException>(() => IdxReader.ReadImages(path))!;
        Assert.That(ex.Message, Does.Contain(path).And.Contain("truncated").And.Contain("16-byte header, found 10 bytes"));
    }

    [Test]
    public void TruncatedGzipIsReported()
    {
        var content = IdxFiles.Images(50, 28, 28, i => (byte)(i * 2654435761u >> 24));
        var whole = files.Write("whole.gz", content, gzip: true);
        var path = files.Write("cut.gz", File.ReadAllBytes(whole)[..^2000]);
        var ex = Assert.Throws<InputException>(() => IdxReader.ReadImages(path))!;
        Assert.That(ex.Message, Does.Contain(path).And.Contain("truncated"));
    }

    [Test]
    public void TrailingBytesAreReported()
    {
        var path = files.Write("labels", [.. IdxFiles.Labels(1, 2, 3), 7, 7]);
        var ex = Assert.Throws<InputException>(() => IdxReader.ReadLabels(path))!;
        Assert.That(ex.Message, Does.Contain(path).And.Contain("expected 3 bytes of data, found 5"));
    }

    [Test]
    public void HugeHeaderCountsGiveTheExactByteCount()
    {
        // (2^31 - 1)^3 bytes: past long, where the count used to wrap around.
        var path = files.Write("images", [.. IdxFiles.Header(0x803, int.MaxValue, int.MaxValue, int.MaxValue), 1, 2, 3, 4]);
        var ex = Assert.Throws<InputException>(() => IdxReader.ReadImages(path))!;
        Assert.That(ex.Message, Does.Contain(path).And.Contain("truncated")
            .And.Contain("2147483647 images of 2147483647x2147483647, expected 9903520300447984150353281023 bytes of data, found 4"));
    }

    [TestCase(2)]
    [TestCase(200)]
    public void CorruptGzipIsNamedAsOne(int damagedAt)
    {
        var content = IdxFiles.Images(50, 28, 28, i => (byte)(i * 2654435761u >> 24));
        var bytes = File.ReadAllBytes(files.Write("whole.gz", content, gzip: true));
        for (var i = damagedAt; i < damagedAt + 64; i++)
        {
            bytes[i] ^= 0x5a;
        }

        var path = files.Write("damaged.gz", bytes);
        var ex = Assert.Throws<InputException>(() => IdxReader.ReadImages(path))!;
        Assert.That(ex.Message, Does.StartWith($"{path}: corrupt gzip file"));
        Assert.That(ex.Message, Does.Not.Contain("compression method"));
    }

    [TestCase(true, "train-images-idx3-ubyte")]
    [TestCase(false, "t10k-images-idx3-ubyte")]
    public void ZeroItemFileIsNamed(bool train, string images)
    {
        var prefix = train ? "train" : "t10k";
        files.Write($"{prefix}-images-idx3-ubyte", IdxFiles.Images(0, 28, 28));
        files.Write($"{prefix}-labels-idx1-ubyte", IdxFiles.Labels());
        var ex = Assert.Throws<InputException>(() => FashionMnist.Load(files.Directory, train))!;
        Assert.That(ex.Message, Does.StartWith($"{Path.Combine(files.Directory, images)}: holds no images"));
    }
}
