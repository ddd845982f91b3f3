using MpiPipeline.Benchmarks;

namespace MpiPipeline.Tests.Benchmarks;

[TestFixture]
public sealed class SampleStatisticsTests
{
    [TestCase(new[] { 5.0 }, 5.0, 5.0)]
    [TestCase(new[] { 3.0, 1.0, 2.0 }, 1.0, 2.0)]
    [TestCase(new[] { 4.0, 1.0, 3.0, 2.0 }, 1.0, 2.5)]
    [TestCase(new[] { 9.0, 1.0, 1.0, 1.0, 100.0 }, 1.0, 1.0)]
    [TestCase(new[] { 0.25, 0.5 }, 0.25, 0.375)]
    public void MinAndMedian(double[] samples, double min, double median)
    {
        Assert.That(SampleStatistics.Min(samples), Is.EqualTo(min));
        Assert.That(SampleStatistics.Median(samples), Is.EqualTo(median));
    }

    [Test]
    public void MedianLeavesTheSamplesInTheirOrder()
    {
        double[] samples = [3, 1, 2];
        SampleStatistics.Median(samples);
        Assert.That(samples, Is.EqualTo(new double[] { 3, 1, 2 }));
    }

    [Test]
    public void RefusesNoSamplesAndNaN()
    {
        Assert.That(() => SampleStatistics.Median([]), Throws.ArgumentException);
        Assert.That(() => SampleStatistics.Min([]), Throws.ArgumentException);
        Assert.That(() => SampleStatistics.Median([1, double.NaN]), Throws.ArgumentException);
    }
}
