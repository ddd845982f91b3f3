using MpiPipeline.Training;

namespace MpiPipeline.Tests.Training;

public sealed class LossTallyTests
{
    [TestCase(10, 0, 3, 0, 4)]
    [TestCase(10, 1, 3, 4, 8)]
    [TestCase(10, 2, 3, 8, 10)]
    [TestCase(10, 0, 1, 0, 10)]
    [TestCase(3, 3, 4, 3, 3)]   // more parts than samples: the last part is empty, never past the end
    [TestCase(0, 0, 2, 0, 0)]
    [TestCase(12, 3, 4, 9, 12)]
    public void ShareCutsTheSetIntoContiguousEqualParts(int count, int part, int parts, int start, int end)
    {
        Assert.That(LossTally.Share(count, part, parts), Is.EqualTo((start, end)));
    }

    [Test]
    public void SharesCoverEverySampleOnce()
    {
        foreach (var (count, parts) in new[] { (10000, 3), (7, 7), (5, 8), (1000, 6) })
        {
            var covered = Enumerable.Range(0, parts).Select(p => LossTally.Share(count, p, parts)).ToArray();
            Assert.That(covered.Sum(r => r.End - r.Start), Is.EqualTo(count), $"{count} over {parts}");
            for (var p = 1; p < parts; p++)
            {
                Assert.That(covered[p].Start, Is.EqualTo(covered[p - 1].End), $"{count} over {parts}, part {p}");
            }
        }
    }

    [Test]
    public void MeansWeightEachBatchByItsSamples()
    {
        var tally = new LossTally();
        tally.Add(meanLoss: 2.0, correct: 3, count: 4);   // loss sum 8
        tally.Add(meanLoss: 0.5, correct: 1, count: 12);  // loss sum 6
        var (loss, accuracy) = tally.Means();
        Assert.That(loss, Is.EqualTo(14.0 / 16).Within(1e-15));
        Assert.That(accuracy, Is.EqualTo(4.0 / 16).Within(1e-15));
        Assert.That(tally.Samples, Is.EqualTo(16));
    }

    [Test]
    public void AnEmptyTallyHasZeroMeansNotNaN()
    {
        Assert.That(new LossTally().Means(), Is.EqualTo((0.0, 0.0)));
    }
}
