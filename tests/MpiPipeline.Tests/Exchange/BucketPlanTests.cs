using MpiPipeline.Exchange;

namespace MpiPipeline.Tests.Exchange;

/// <summary>The overlapped exchange's buckets: reverse layer order, greedy up to the capacity, a parameter never split.</summary>
[TestFixture]
public sealed class BucketPlanTests
{
    private static GradientBucket B(int offset, int length, int first, int count) => new(offset, length, first, count);

    public static IEnumerable<TestCaseData> Plans()
    {
        // Lengths in floats (4 bytes each); capacity in bytes. Offsets: 0, 10, 30, 60, 100 (sum 100).
        int[] lengths = [10, 20, 30, 40];
        yield return new TestCaseData(lengths, 400L, new[] { B(0, 100, 0, 4) }).SetName("everything fits one bucket");
        yield return new TestCaseData(lengths, 399L, new[] { B(10, 90, 1, 3), B(0, 10, 0, 1) }).SetName("one byte less: the first parameter alone, last");
        yield return new TestCaseData(lengths, 280L, new[] { B(30, 70, 2, 2), B(0, 30, 0, 2) }).SetName("the last two, then the first two");
        yield return new TestCaseData(lengths, 160L, new[] { B(60, 40, 3, 1), B(30, 30, 2, 1), B(0, 30, 0, 2) }).SetName("reverse order, packed greedily");
        yield return new TestCaseData(lengths, 4L, new[] { B(60, 40, 3, 1), B(30, 30, 2, 1), B(10, 20, 1, 1), B(0, 10, 0, 1) })
            .SetName("every parameter larger than the bucket: one bucket each, never split");
        yield return new TestCaseData(new[] { 5, 1000, 5, 5 }, 80L, new[] { B(1005, 10, 2, 2), B(5, 1000, 1, 1), B(0, 5, 0, 1) })
            .SetName("a large parameter in the middle is a bucket alone");
        yield return new TestCaseData(Array.Empty<int>(), 100L, Array.Empty<GradientBucket>()).SetName("no parameters, no buckets");
    }

    [TestCaseSource(nameof(Plans))]
    public void PlanIsReverseGreedyAndNeverSplitsAParameter(int[] lengths, long capacity, GradientBucket[] expected) =>
        Assert.That(BucketPlan.Create(lengths, capacity), Is.EqualTo(expected));

    [Test]
    public void BucketsCoverTheBufferOnceInDescendingOffsets()
    {
        int[] lengths = [784 * 128, 128, 128 * 10, 10];
        var plan = BucketPlan.Create(lengths, 64 * 1024);
        Assert.That(plan.Sum(b => b.Length), Is.EqualTo(lengths.Sum()));
        Assert.That(plan.Select(b => b.Offset), Is.Ordered.Descending);
        Assert.That(plan.Zip(plan.Skip(1)).All(p => p.Second.Offset + p.Second.Length == p.First.Offset), "contiguous, no gap");
    }

    [TestCase(25, 25L * 1024 * 1024)]
    [TestCase(0.5, 512L * 1024)]
    public void CapacityIsMegabytesOfTwoToTheTwenty(double megabytes, long bytes) =>
        Assert.That(BucketPlan.CapacityBytes(megabytes), Is.EqualTo(bytes));

    [TestCase(0)]
    [TestCase(-1)]
    [TestCase(double.NaN)]
    [TestCase(double.PositiveInfinity)]
    public void CapacityRejectsWhatIsNotAPositiveSize(double megabytes)
    {
        var error = Assert.Throws<InputException>(() => BucketPlan.CapacityBytes(megabytes))!;
        Assert.That(error.Message, Does.StartWith("--bucket-mb must be a positive number of megabytes"));
    }
}
