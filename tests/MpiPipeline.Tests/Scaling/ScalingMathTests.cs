using MpiPipeline.Scaling;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Tests.Scaling;

/// <summary>Medians, spread, speedup and efficiency, by hand.</summary>
[TestFixture]
public sealed class ScalingMathTests
{
    [Test]
    public void MedianAndSpread()
    {
        Assert.That(ScalingMath.Median([3.0, 1, 2]), Is.EqualTo(2));
        Assert.That(ScalingMath.Median([4.0, 1, 3, 2]), Is.EqualTo(2.5));
        Assert.That(ScalingMath.SpreadPercent([90.0, 100, 110]), Is.EqualTo(20).Within(1e-12));
        Assert.That(ScalingMath.SpreadPercent([42.0]), Is.EqualTo(0));
        Assert.Throws<ArgumentException>(() => ScalingMath.Median([]));
    }

    [Test]
    public void SpeedupIdealAndEfficiency()
    {
        Assert.That(ScalingMath.Speedup(1800, 1000), Is.EqualTo(1.8).Within(1e-12));
        Assert.That(ScalingMath.IdealSpeedup(8, 2), Is.EqualTo(4));
        Assert.That(ScalingMath.Efficiency(3, 4), Is.EqualTo(0.75));
        Assert.That(ScalingMath.Oversubscribed(4, 1, 2), Is.True);
        Assert.That(ScalingMath.Oversubscribed(2, 1, 2), Is.False);
        Assert.That(ScalingMath.Oversubscribed(2, 2, 2), Is.True, "threads count too");
    }

    /// <summary>
    /// Strong scaling, global batch 240: 1 rank 0.24 s/step (1000 samples/s), 2 ranks 0.1333 s (1800/s), 4 ranks
    /// 0.1 s (2400/s): speedups 1, 1.8, 2.4 and efficiencies 1, 0.9, 0.6. Weak scaling, 30 per rank: the step time
    /// grows from 0.03 to 0.04 s at 4 ranks: efficiency 0.75 = T(1)/T(4), speedup 3.
    /// </summary>
    [Test]
    public void PointsOfASweep()
    {
        ScalingRun[] runs =
        [
            ScalingCsvTests.Run(ScalingMode.Strong, 1, 1, 240, 0.24),
            ScalingCsvTests.Run(ScalingMode.Strong, 2, 1, 240, 240.0 / 1800),
            ScalingCsvTests.Run(ScalingMode.Strong, 4, 1, 240, 0.1),
            ScalingCsvTests.Run(ScalingMode.Weak, 1, 1, 30, 0.03),
            ScalingCsvTests.Run(ScalingMode.Weak, 4, 1, 120, 0.04),
            // repetitions: the median is taken, the spread reported
            ScalingCsvTests.Run(ScalingMode.Weak, 4, 2, 120, 0.05, oversubscribed: true),
            ScalingCsvTests.Run(ScalingMode.Weak, 4, 3, 120, 0.03),
        ];
        var points = ScalingPoint.Summarize(runs);
        Assert.That(points.Select(p => (p.Mode, p.Ranks)), Is.EqualTo(new[]
        {
            (ScalingMode.Strong, 1), (ScalingMode.Strong, 2), (ScalingMode.Strong, 4), (ScalingMode.Weak, 1), (ScalingMode.Weak, 4),
        }));
        Assert.That(points.Select(p => p.Speedup), Is.EqualTo(new[] { 1, 1.8, 2.4, 1, 3 }).Within(1e-9));
        Assert.That(points.Select(p => p.Efficiency), Is.EqualTo(new[] { 1, 0.9, 0.6, 1, 0.75 }).Within(1e-9));
        Assert.That(points.Select(p => p.IdealSpeedup), Is.EqualTo(new[] { 1.0, 2, 4, 1, 4 }));
        var weak4 = points[^1];
        Assert.That(weak4.Repetitions, Is.EqualTo(3));
        Assert.That(weak4.ThroughputMedian, Is.EqualTo(3000).Within(1e-9));
        Assert.That(weak4.ThroughputMin, Is.EqualTo(2400).Within(1e-9));
        Assert.That(weak4.ThroughputMax, Is.EqualTo(4000).Within(1e-9));
        Assert.That(weak4.SpreadPercent, Is.EqualTo(100.0 * 1600 / 3000).Within(1e-9));
        Assert.That(weak4.Oversubscribed, Is.True, "one oversubscribed repetition marks the point");
        Assert.That(weak4.PerRankBatch, Is.EqualTo(30));
        Assert.That(points[1].CommunicationShare, Is.EqualTo(0.002 / 0.013).Within(1e-12), "communication / (compute + communication + other)");
        Assert.That(points[0].CommunicationShare, Is.EqualTo(0));
    }

    [Test]
    public void StepTimeComesFromTheLossCurveAfterTheWarmUp()
    {
        // 6 steps; wall clock at the end of each: 1.0 (slow first step), 1.5, 1.6, 1.7, 1.8, 1.9
        double[] wall = [1.0, 1.5, 1.6, 1.7, 1.8, 1.9];
        var result = new RunResult("psgd", "mlp", 2, new Dictionary<string, string> { ["batch"] = "64", ["threadsPerRank"] = "1" }, [],
            new RunTotals(Steps: 6, Samples: 384, CommunicationRounds: 6, AllreducePayloadBytesPerRank: 6 * 1000, BytesSentPerRank: 6000, MpiPayloadBytesPerRank: 6000,
                ComputeSeconds: 0.3, CommunicationSeconds: 0.12, DataSeconds: 0.01, EvaluationSeconds: 0.05, StepSeconds: 0.6, LoopOverheadSeconds: 0.18),
            0.5, 2.5, [.. wall.Select((w, i) => new LossPoint(i + 1, i + 1, w, 1.0))], []);
        var run = ScalingRun.FromResult(result, ScalingMode.Strong, 1, warmupSteps: 2, oversubscribed: false, "r.json");
        Assert.That(run.StepSeconds, Is.EqualTo(0.1).Within(1e-12), "(1.9 - 1.5) / 4 timed steps");
        Assert.That(run.TimedSteps, Is.EqualTo(4));
        Assert.That(run.ComputeSeconds, Is.EqualTo(0.05).Within(1e-12));
        Assert.That(run.CommunicationSeconds, Is.EqualTo(0.02).Within(1e-12));
        Assert.That(run.OtherSeconds, Is.EqualTo(0.03).Within(1e-12));
        Assert.That(run.PayloadBytes, Is.EqualTo(1000));
        Assert.That(run.Throughput, Is.EqualTo(640).Within(1e-9));

        // A data set of 5 steps per epoch at this batch: step 6 was in the second epoch.
        var small = result with { Options = new Dictionary<string, string>(result.Options) { ["stepsPerEpoch"] = "5", ["dataset"] = "idx:/d" } };
        Assert.That(Assert.Throws<MpiPipeline.InputException>(() => ScalingRun.FromResult(small, ScalingMode.Strong, 1, 2, false, "r.json"))!.Message,
            Does.StartWith("r.json: 6 steps run past the first epoch (5 steps on --dataset idx:/d at global batch 64)"));
        Assert.That(ScalingRun.FromResult(small with { Options = new Dictionary<string, string>(small.Options) { ["stepsPerEpoch"] = "6" } },
            ScalingMode.Strong, 1, 2, false, "r.json").Steps, Is.EqualTo(6));

        var sparse = result with { LossCurve = result.LossCurve.Where((_, i) => i % 2 == 1).ToList() };
        Assert.Throws<MpiPipeline.InputException>(() => ScalingRun.FromResult(sparse, ScalingMode.Strong, 1, 2, false, "r.json"));

        // A diverged run (its JSON marked so) is named as diverged, not timed.
        var diverged = result with
        {
            Status = RunStatus.Diverged, FinalTestAccuracy = null,
            Divergence = new DivergenceReport(4, 1, "loss", double.NaN, double.NaN, double.NaN, 0, "training diverged at step 4"),
        };
        Assert.That(Assert.Throws<MpiPipeline.InputException>(() => ScalingRun.FromResult(diverged, ScalingMode.Strong, 1, 2, false, "r.json"))!.Message,
            Does.StartWith("r.json: the run diverged at step 4 (loss NaN)").And.Contain("smaller --lr"));
    }

    [Test]
    public void BreakdownIsOverTheTimedStepsWhenTheCurveRecordsIt()
    {
        // Cumulative rank-0 compute and communication at the end of each step: the first step is slow (warm-up).
        double[] wall = [1.0, 1.5, 1.6, 1.7, 1.8, 1.9];
        double[] compute = [0.6, 0.64, 0.68, 0.72, 0.76, 0.80];
        double[] communication = [0.2, 0.21, 0.22, 0.23, 0.24, 0.25];
        var result = new RunResult("psgd", "mlp", 2, new Dictionary<string, string> { ["batch"] = "64" }, [],
            new RunTotals(Steps: 6, Samples: 384, CommunicationRounds: 6, AllreducePayloadBytesPerRank: 6000, BytesSentPerRank: 6000, MpiPayloadBytesPerRank: 6000,
                ComputeSeconds: 0.8, CommunicationSeconds: 0.25, DataSeconds: 0.01, EvaluationSeconds: 0.05, StepSeconds: 1.9, LoopOverheadSeconds: 0.85),
            0.5, 2.5, [.. wall.Select((w, i) => new LossPoint(i + 1, i + 1, w, 1.0, compute[i], communication[i]))], []);
        var run = ScalingRun.FromResult(result, ScalingMode.Strong, 1, warmupSteps: 2, oversubscribed: false, "r.json");
        Assert.That(run.StepSeconds, Is.EqualTo(0.1).Within(1e-12));
        Assert.That(run.ComputeSeconds, Is.EqualTo(0.04).Within(1e-12), "(0.80 - 0.64) / 4, not the totals' 0.8 / 6 with the warm-up in it");
        Assert.That(run.CommunicationSeconds, Is.EqualTo(0.01).Within(1e-12));
        Assert.That(run.OtherSeconds, Is.EqualTo(0.05).Within(1e-12), "step - compute - communication on the same basis");
    }
}
