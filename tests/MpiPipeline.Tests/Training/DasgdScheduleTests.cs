using MpiPipeline.Async;
using MpiPipeline.Training;

namespace MpiPipeline.Tests.Training;

/// <summary>DASGD's schedules: injected delays, step sizes and the paper's condition between them, slow workers, the
/// master's snapshot bookkeeping and the histogram's bins, against values worked out by hand.</summary>
public sealed class DasgdScheduleTests
{
    [Test]
    public void DelaySchedulesServeTheVersionsTheyName()
    {
        Assert.That(Enumerable.Range(0, 5).Select(n => DelaySchedule.Parse("none", 1).Served(n)), Is.EqualTo(new long[] { 0, 1, 2, 3, 4 }));
        Assert.That(Enumerable.Range(0, 5).Select(n => DelaySchedule.Parse("const:2", 1).Served(n)), Is.EqualTo(new long[] { 0, 0, 0, 1, 2 }));
        // e(n) = floor(0.5 n): s(n) = n - floor(n / 2) = ceil(n / 2).
        Assert.That(Enumerable.Range(0, 7).Select(n => DelaySchedule.Parse("poly:0.5,1", 1).Served(n)), Is.EqualTo(new long[] { 0, 1, 1, 2, 2, 3, 3 }));
        Assert.That(DelaySchedule.Parse("poly:1,0.5", 1).Extra(100), Is.EqualTo(10));
        Assert.That(DelaySchedule.Parse("poly:0.5,1", 1).Growth, Is.EqualTo(1));
    }

    [Test]
    public void RandomDelaysReplayFromTheSeedAndStayInRange()
    {
        var a = DelaySchedule.Parse("random:3", 5);
        var b = DelaySchedule.Parse("random:3", 5);
        var values = Enumerable.Range(1, 400).Select(n => a.Extra(n)).ToList();
        Assert.That(Enumerable.Range(1, 400).Select(n => b.Extra(n)), Is.EqualTo(values));
        Assert.That(values.Distinct().Order(), Is.EqualTo(new long[] { 0, 1, 2, 3 }));
        Assert.That(Enumerable.Range(1, 400).Select(n => DelaySchedule.Parse("random:3", 6).Extra(n)), Is.Not.EqualTo(values));
    }

    [TestCase("sometimes")]
    [TestCase("const:-1")]
    [TestCase("poly:1")]
    [TestCase("poly:1,9")]
    [TestCase("random:x")]
    public void BadDelayIsOneInputError(string text) =>
        Assert.That(() => DelaySchedule.Parse(text, 1), Throws.TypeOf<InputException>().With.Message.Contains("--delay"));

    [Test]
    public void StepSchedulesFollowTheirFormulas()
    {
        Assert.That(StepSchedule.Parse("const").Factor(1000), Is.EqualTo(1));
        Assert.That(StepSchedule.Parse("poly:0.5").Factor(16), Is.EqualTo(0.25).Within(1e-15));
        var quasi = StepSchedule.Parse("quasilinear");
        Assert.That(quasi.Factor(1), Is.EqualTo(1).Within(1e-15));
        // Proportional to 1 / (m log m log log m), m = n - 1 + e^e.
        static double H(double m) => m * Math.Log(m) * Math.Log(Math.Log(m));
        var e = Math.Exp(Math.E);
        Assert.That(quasi.Factor(1001), Is.EqualTo(H(e) / H(1000 + e)).Within(1e-12));
        Assert.That(() => StepSchedule.Parse("poly"), Throws.TypeOf<InputException>().With.Message.Contains("--step-schedule"));
    }

    [Test]
    public void DefaultStepFollowsThePapersConditionOnTheDelayGrowth()
    {
        Assert.That(StepSchedule.DefaultFor(0), Is.EqualTo("poly:0.75"));
        Assert.That(StepSchedule.DefaultFor(0.5), Is.EqualTo("poly:0.875"));
        Assert.That(StepSchedule.DefaultFor(1), Is.EqualTo("quasilinear"));
        foreach (var p in new[] { 0, 0.25, 0.5, 0.9, 1 })
        {
            Assert.That(StepSchedule.WithinCondition(StepSchedule.DefaultFor(p), p), Is.True, $"P = {p}");
        }

        // (1 + P)/2 < q <= 1: q = 0.75 is on the boundary for P = 0.5, constant steps never satisfy it.
        Assert.That(StepSchedule.WithinCondition("poly:0.75", 0.5), Is.False);
        Assert.That(StepSchedule.WithinCondition("poly:0.8", 0.5), Is.True);
        Assert.That(StepSchedule.WithinCondition("const", 0), Is.False);
        Assert.That(StepSchedule.WithinCondition("quasilinear", 1.5), Is.False);
    }

    [Test]
    public void MasterForgetsOnlyVersionsNoLaterAnswerServes()
    {
        // const:2 over 6 updates: s = 0,0,0,1,2,3,4; from update n on the oldest served is s(n).
        var min = DasgdEngine.MinServedFrom(DelaySchedule.Parse("const:2", 1), 6);
        Assert.That(min, Is.EqualTo(new long[] { 0, 0, 0, 1, 2, 3, 4, long.MaxValue }));
        Assert.That(DasgdEngine.MinServedFrom(DelaySchedule.Parse("none", 1), 3), Is.EqualTo(new long[] { 0, 1, 2, 3, long.MaxValue }));
    }

    [Test]
    public void SlowWorkersParseAndNameOnlyWorkers()
    {
        var slow = SlowWorkers.Parse("1:4,3:2.5");
        Assert.That(slow.FactorOf(1), Is.EqualTo(4));
        Assert.That(slow.FactorOf(3), Is.EqualTo(2.5));
        Assert.That(slow.FactorOf(2), Is.EqualTo(1));
        Assert.That(() => slow.Validate(3, 1), Throws.TypeOf<InputException>().With.Message.Contains("rank 3 is not a worker"));
        Assert.That(() => SlowWorkers.Parse("1:4").Validate(3, 1), Throws.Nothing);
        Assert.That(() => SlowWorkers.Parse("0:4").Validate(3, 1), Throws.TypeOf<InputException>());
        foreach (var bad in new[] { "1", "1:0.5", "1:4,1:2", "x:2" })
        {
            Assert.That(() => SlowWorkers.Parse(bad), Throws.TypeOf<InputException>().With.Message.Contains("--slow-workers"), bad);
        }
    }

    [Test]
    public void HistogramBinsEveryGradient()
    {
        var (labels, values) = DelayHistogram.Bins(new Dictionary<long, long> { [0] = 3, [2] = 1 });
        Assert.That(labels, Is.EqualTo(new[] { "0", "1", "2" }));
        Assert.That(values, Is.EqualTo(new double[] { 3, 0, 1 }));
        var wide = DelayHistogram.Bins(Enumerable.Range(0, 100).ToDictionary(d => (long)d, _ => 2L));
        Assert.That(wide.Values.Sum(), Is.EqualTo(200));
        Assert.That(wide.Labels, Has.Count.LessThanOrEqualTo(40));
        Assert.That(wide.Labels[0], Is.EqualTo("0-2"));
    }
}
