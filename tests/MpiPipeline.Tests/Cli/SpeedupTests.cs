using MpiPipeline.Cli.Verbs;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Tests.Cli;

/// <summary>mpipipe speedup's reading of a training-loss curve and the spread it reports.</summary>
[TestFixture]
public sealed class SpeedupTests
{
    [Test]
    public void StepsToReachIsTheFirstEvaluationAtOrBelowTheTarget()
    {
        TrainLossPoint[] curve = [new(10, 1, 0.9, 0), new(20, 2, 0.5, 0), new(30, 3, 0.6, 0), new(40, 4, 0.4, 0)];
        Assert.That(SpeedupVerb.StepsToReach(curve, 0.5), Is.EqualTo(20));
        Assert.That(SpeedupVerb.StepsToReach(curve, 0.45), Is.EqualTo(40));
        Assert.That(SpeedupVerb.StepsToReach(curve, 0.3), Is.Null);
    }

    [Test]
    public void SampleStandardDeviation()
    {
        Assert.That(NonIidComparison.StandardDeviation([2, 4, 4, 4, 5, 5, 7, 9]), Is.EqualTo(Math.Sqrt(32.0 / 7)).Within(1e-12));
        Assert.That(NonIidComparison.StandardDeviation([1]), Is.NaN);
    }
}
