using MpiPipeline.Mpi;
using MpiPipeline.Pipeline;

namespace MpiPipeline.Tests.Pipeline;

/// <summary>Ideal time and bubble against hand-computed values, and against the simulated schedules.</summary>
[TestFixture]
internal sealed class PipelineTimingTests
{
    [TestCase(1, 1, 1.0, 2.0, 3.0)]    // (1 + 1 - 1) * 3
    [TestCase(4, 8, 1.0, 2.0, 33.0)]   // (8 + 4 - 1) * 3
    [TestCase(2, 16, 0.5, 1.5, 34.0)]  // (16 + 2 - 1) * 2
    [TestCase(4, 1, 10.0, 20.0, 120.0)] // (1 + 4 - 1) * 30: no pipelining at all
    public void IdealTimeOfEqualStages(int stages, int microBatches, double forward, double backward, double expected) =>
        Assert.That(PipelineTiming.IdealTime(stages, microBatches, forward, backward), Is.EqualTo(expected).Within(1e-12));

    [TestCase(1, 5, 0.0)]
    [TestCase(2, 1, 0.5)]        // 1 / 2
    [TestCase(4, 8, 3.0 / 11)]   // 3 / 11
    [TestCase(4, 1, 0.75)]       // 3 / 4
    [TestCase(2, 16, 1.0 / 17)]
    public void BubbleFraction(int stages, int microBatches, double expected) =>
        Assert.That(PipelineTiming.BubbleFraction(stages, microBatches), Is.EqualTo(expected).Within(1e-15));

    [Test]
    public void IdealTimeFromMeasuredStagesIsPacedByTheSlowestStage()
    {
        // Stage sums 3, 5, 4: the slowest is 5; (4 + 3 - 1) * 5 = 30.
        Assert.That(PipelineTiming.IdealTime(4, [1.0, 2.0, 1.5], [2.0, 3.0, 2.5]), Is.EqualTo(30.0).Within(1e-12));
        // Equal stages give the equal-stage formula.
        Assert.That(PipelineTiming.IdealTime(8, [1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]),
            Is.EqualTo(PipelineTiming.IdealTime(4, 8, 1.0, 2.0)));
    }

    [Test]
    public void SlowestForwardAndSlowestBackwardOnDifferentStages()
    {
        // Stage 0: t_f = 10, t_b = 0; stage 1: t_f = 0, t_b = 10; M = 2. The estimate (2 + 2 - 1) * 10 = 30.
        double[] forward = [10, 0], backward = [0, 10];
        Assert.That(PipelineTiming.IdealTime(2, forward, backward), Is.EqualTo(30.0));
        // GPipe by hand: stage 0 F0 [0,10) F1 [10,20); stage 1 F0, F1 at 10, 20, B1 [20,30), B0 [30,40); stage 0's
        // backwards take no time: 40.
        Assert.That(PipelineTiming.SimulatedTime(Schedule.GPipe(2, 2), forward, backward), Is.EqualTo(40.0));
        // 1F1B by hand: stage 1 F0 at 10, B0 [10,20), F1 at 20, B1 [20,30): 30.
        Assert.That(PipelineTiming.SimulatedTime(Schedule.OneFOneB(2, 2), forward, backward), Is.EqualTo(30.0));
    }

    [Test]
    public void OneSlowStageFinishesBeforeTheEstimate()
    {
        // Stage 1 takes 1 + 2 = 3, the other two 0: the pipeline is just stage 1, M * 3 = 12 < (4 + 3 - 1) * 3 = 18.
        double[] forward = [0, 1, 0], backward = [0, 2, 0];
        Assert.That(PipelineTiming.IdealTime(4, forward, backward), Is.EqualTo(18.0));
        Assert.That(PipelineTiming.SimulatedTime(Schedule.OneFOneB(3, 4), forward, backward), Is.EqualTo(12.0));
        Assert.That(PipelineTiming.SimulatedTime(Schedule.GPipe(3, 4), forward, backward), Is.EqualTo(12.0));
    }

    [Test, Combinatorial]
    public void BothSchedulesTakeTheIdealTimeWithEqualStages(
        [Values] ScheduleKind kind, [Range(1, 6)] int stages, [Range(1, 10)] int microBatches)
    {
        // t_b = 2 t_f, as is typical; the formula does not depend on the ratio.
        var forward = Enumerable.Repeat(1.0, stages).ToArray();
        var backward = Enumerable.Repeat(2.0, stages).ToArray();
        var schedule = Schedule.Create(kind, stages, microBatches);
        Assert.That(PipelineTiming.SimulatedTime(schedule, forward, backward),
            Is.EqualTo(PipelineTiming.IdealTime(stages, microBatches, 1.0, 2.0)).Within(1e-9));
    }

    [Test]
    public void SimulatedTimeNeverExceedsTheBoundFromTheSlowestForwardAndBackward()
    {
        var random = new Random(20240605);
        foreach (var kind in Enum.GetValues<ScheduleKind>())
        {
            for (var trial = 0; trial < 200; trial++)
            {
                var stages = random.Next(1, 7);
                var microBatches = random.Next(1, 11);
                var forward = Enumerable.Range(0, stages).Select(_ => random.NextDouble()).ToArray();
                var backward = Enumerable.Range(0, stages).Select(_ => 2 * random.NextDouble()).ToArray();
                var bound = PipelineTiming.IdealTime(stages, microBatches, forward.Max(), backward.Max());
                var simulated = PipelineTiming.SimulatedTime(Schedule.Create(kind, stages, microBatches), forward, backward);
                var busiestStage = Enumerable.Range(0, stages).Max(s => microBatches * (forward[s] + backward[s]));
                Assert.That(simulated, Is.LessThanOrEqualTo(bound + 1e-9), $"{kind} S={stages} M={microBatches}");
                Assert.That(simulated, Is.GreaterThanOrEqualTo(busiestStage - 1e-9), $"{kind} S={stages} M={microBatches}");
            }
        }
    }

    [Test]
    public void BadShapesAreInputErrorsAndBadTimesAreArgumentErrors()
    {
        Assert.Throws<InputException>(() => PipelineTiming.IdealTime(0, 4, 1, 1));
        Assert.Throws<InputException>(() => PipelineTiming.BubbleFraction(2, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => PipelineTiming.IdealTime(2, 4, -1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => PipelineTiming.IdealTime(2, 4, 1, double.NaN));
        Assert.Throws<ArgumentException>(() => PipelineTiming.IdealTime(4, [1.0, 2.0], [1.0]));
        Assert.Throws<ArgumentException>(() => PipelineTiming.Simulate(Schedule.GPipe(3, 2), [1.0, 1.0], [1.0, 1.0]));
    }
}
