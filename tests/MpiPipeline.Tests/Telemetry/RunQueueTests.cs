using System.Diagnostics;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Tests.Telemetry;

[TestFixture]
internal sealed class RunQueueTests
{
    [Test]
    public void ABusyThreadsRunTimeGrowsAndItsWaitShareIsAFraction()
    {
        var before = RunQueueSample.Read();
        Assume.That(before, Is.Not.Null, "the kernel exposes no /proc/thread-self/schedstat here");
        var clock = Stopwatch.StartNew();
        var spin = 0L;
        while (clock.ElapsedMilliseconds < 60)
        {
            spin++;
        }

        var after = RunQueueSample.Read();
        Assert.That(spin, Is.GreaterThan(0));
        var ran = after!.Value.RunNanoseconds - before!.Value.RunNanoseconds;
        var waited = after.Value.WaitNanoseconds - before.Value.WaitNanoseconds;
        // 60 ms of wall time were spent running or waiting for a core (never sleeping), give or take the clock reads.
        Assert.That(ran + waited, Is.InRange(50_000_000L, 2_000_000_000L));
        Assert.That(RunQueueSample.WaitShare(before, after), Is.InRange(0.0, 1.0));
    }

    [Test]
    public void TheShareIsWaitOverRunPlusWaitAndNullWithoutBothSamples()
    {
        var before = new RunQueueSample(1_000, 500);
        Assert.Multiple(() =>
        {
            Assert.That(RunQueueSample.WaitShare(before, new RunQueueSample(4_000, 1_500)), Is.EqualTo(0.25));
            Assert.That(RunQueueSample.WaitShare(before, before), Is.Null, "neither ran nor waited");
            Assert.That(RunQueueSample.WaitShare(null, before), Is.Null);
            Assert.That(RunQueueSample.WaitShare(before, null), Is.Null);
        });
    }

    [Test]
    public void AWorkingShareLeavesTheIdlePhaseOut()
    {
        Assume.That(RunQueueSample.Read(), Is.Not.Null, "the kernel exposes no /proc/thread-self/schedstat here");
        var share = new WorkingWaitShare();
        Spin(20);
        share.Idle();
        var before = RunQueueSample.Read();
        Spin(40);
        var idle = RunQueueSample.WaitShare(before, RunQueueSample.Read());
        share.Working();
        Spin(20);
        Assert.That(share.Share(), Is.InRange(0.0, 1.0));
        Assert.That(idle, Is.InRange(0.0, 1.0));
    }

    private static void Spin(int milliseconds)
    {
        var clock = Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < milliseconds)
        {
        }
    }
}
