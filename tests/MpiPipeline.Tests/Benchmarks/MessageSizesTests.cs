using MpiPipeline.Benchmarks;

namespace MpiPipeline.Tests.Benchmarks;

[TestFixture]
public sealed class MessageSizesTests
{
    [TestCase("8", 8L)]
    [TestCase("8B", 8L)]
    [TestCase("4096", 4096L)]
    [TestCase("64K", 65536L)]
    [TestCase("64KiB", 65536L)]
    [TestCase("64kb", 65536L)]
    [TestCase("4M", 4194304L)]
    [TestCase("64MiB", 67108864L)]
    [TestCase(" 1GiB ", 1073741824L)]
    public void ParsesByteCountsAndBinarySuffixes(string text, long expected)
    {
        Assert.That(MessageSizes.TryParse(text, out var bytes, out var error), Is.True, error);
        Assert.That(bytes, Is.EqualTo(expected));
    }

    [TestCase("")]
    [TestCase("K")]
    [TestCase("-8")]
    [TestCase("1.5K")]
    [TestCase("64Q")]
    [TestCase("2G")]
    [TestCase("99999999999999999999")]
    public void RejectsWhatIsNotASize(string text)
    {
        Assert.That(MessageSizes.TryParse(text, out _, out var error), Is.False);
        Assert.That(error, Does.Contain(text.Trim()));
    }

    [Test]
    public void DefaultSweepIsEveryPowerOfTwoFrom8BytesTo64MiB()
    {
        var sizes = MessageSizes.Sweep(8, 64L << 20, 2);
        Assert.That(sizes, Has.Count.EqualTo(24));
        Assert.That(sizes, Is.EqualTo(Enumerable.Range(3, 24).Select(k => 1L << k)));
    }

    [Test]
    public void StepOf4SkipsEveryOtherPowerAndStopsAtTheLastOneNotAboveMax()
    {
        Assert.That(MessageSizes.Sweep(8, 64L << 20, 4), Is.EqualTo(new long[]
        {
            8, 32, 128, 512, 2048, 8192, 32768, 131072, 524288, 2097152, 8388608, 33554432,
        }));
        Assert.That(MessageSizes.Sweep(16, 16, 2), Is.EqualTo(new long[] { 16 }));
    }

    [TestCase(3L, 64L, 2, "smallest")]
    [TestCase(2L, 64L, 2, "smallest")]
    [TestCase(8L, 100L, 2, "largest")]
    [TestCase(8L, 2L << 30, 2, "largest")]
    [TestCase(64L, 8L, 2, "below the smallest")]
    [TestCase(8L, 64L, 3, "step")]
    [TestCase(8L, 64L, 1, "step")]
    public void RefusesBadBounds(long min, long max, int factor, string why)
    {
        Assert.That(MessageSizes.SweepError(min, max, factor), Does.Contain(why));
        Assert.That(() => MessageSizes.Sweep(min, max, factor), Throws.ArgumentException.With.Message.Contains(why));
    }

    [TestCase(8L, "8 B")]
    [TestCase(1000L, "1000 B")]
    [TestCase(65536L, "64 KiB")]
    [TestCase(67108864L, "64 MiB")]
    [TestCase(1073741824L, "1 GiB")]
    public void LabelsUseBinaryUnits(long bytes, string label) => Assert.That(MessageSizes.Label(bytes), Is.EqualTo(label));
}
