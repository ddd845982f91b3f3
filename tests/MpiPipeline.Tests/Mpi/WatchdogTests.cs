using MpiPipeline.Mpi;

namespace MpiPipeline.Tests.Mpi;

/// <summary>The stall watchdog's settings (defaults, 0 = never, bad values) and what its message says a call waits for.</summary>
[TestFixture]
public sealed class WatchdogTests
{
    private static Func<string, string?> Environment(string? warn, string? abort) => variable => variable switch
    {
        Watchdog.WarnVariable => warn,
        Watchdog.AbortVariable => abort,
        _ => null,
    };

    [Test]
    public void UnsetVariablesWarnAfterAMinuteAndAbortAfterTenMinutes()
    {
        Assert.That(Watchdog.ReadSettings(Environment(null, null)), Is.EqualTo((60.0, 600.0)));
        Assert.That(Watchdog.ReadSettings(Environment(" ", "")), Is.EqualTo((60.0, 600.0)));
    }

    [Test]
    public void ZeroKeepsNeverAndNumbersAreSeconds()
    {
        Assert.That(Watchdog.ReadSettings(Environment("0", "0")), Is.EqualTo((0.0, 0.0)));
        Assert.That(Watchdog.ReadSettings(Environment("2.5", "1e3")), Is.EqualTo((2.5, 1000.0)));
    }

    [TestCase("ten")]
    [TestCase("-1")]
    [TestCase("NaN")]
    [TestCase("Infinity")]
    [TestCase("1,5")]
    public void ABadValueIsOneInputErrorNamingTheVariable(string text)
    {
        var ex = Assert.Throws<InputException>(() => Watchdog.ReadSettings(Environment(null, text)))!;
        Assert.That(ex.Message, Does.StartWith($"MPIPIPE_STALL_ABORT_SECONDS='{text}' is not a number of seconds"));
        Assert.That(ex.SameOnEveryRank, Is.True, "the launcher gives every rank the same environment: rank 0 reports it");

        ex = Assert.Throws<InputException>(() => Watchdog.ReadSettings(Environment(text, null)))!;
        Assert.That(ex.Message, Does.StartWith($"MPIPIPE_STALL_WARN_SECONDS='{text}'"));
    }

    [Test]
    public void PointToPointCallsNameTheirPeers()
    {
        Assert.That(Watchdog.Peers(3, Watchdog.NoPeer, 4, isWorld: true), Is.EqualTo(" (waiting for rank 3)"));
        Assert.That(Watchdog.Peers(Watchdog.NoPeer, 1, 4, isWorld: true), Is.EqualTo(" (sending to rank 1)"));
        Assert.That(Watchdog.Peers(2, 0, 4, isWorld: true), Is.EqualTo(" (waiting for rank 2, sending to rank 0)"));
        Assert.That(Watchdog.Peers(-2, Watchdog.NoPeer, 4, isWorld: true), Is.EqualTo(" (waiting for any rank)"));
        Assert.That(Watchdog.Peers(1, Watchdog.NoPeer, 2, isWorld: false), Is.EqualTo(" (waiting for rank 1 of a 2-rank communicator)"));
    }

    [Test]
    public void CollectivesNameTheirSizeAndUnknownCallsNothing()
    {
        Assert.That(Watchdog.Peers(Watchdog.NoPeer, Watchdog.NoPeer, 4, isWorld: true), Is.EqualTo(" (collective over all 4 ranks)"));
        Assert.That(Watchdog.Peers(Watchdog.NoPeer, Watchdog.NoPeer, 2, isWorld: false), Is.EqualTo(" (collective over the 2 ranks of a communicator)"));
        Assert.That(Watchdog.Peers(Watchdog.NoPeer, Watchdog.NoPeer, 0, isWorld: false), Is.Empty);
    }
}
