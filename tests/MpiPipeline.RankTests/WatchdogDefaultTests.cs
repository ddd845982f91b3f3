using System.Text.RegularExpressions;

namespace MpiPipeline.RankTests;

/// <summary>
/// The stall watchdog under a real launcher: a rank waiting for a stopped peer, blocking or polled, is reported with
/// the call and the peer and the job is aborted; a bad setting is one message and a non-zero exit.
/// </summary>
[TestFixture]
[Parallelizable(ParallelScope.None)]
public sealed class WatchdogDefaultTests
{
    public static IEnumerable<TestCaseData> Waits() =>
        from flavor in MpiFlavor.All
        from wait in new[] { ("recv", "MPI_Recv"), ("poll", "MPI_Irecv (polling wait)") }
        select new TestCaseData(flavor, wait.Item1, wait.Item2).SetArgDisplayNames(flavor.Name, wait.Item1);

    [TestCaseSource(nameof(Waits))]
    public void WaitForAStoppedPeerIsAbortedNamingTheCallAndThePeer(MpiFlavor flavor, string wait, string call)
    {
        var result = MpiLauncher.Launch(flavor, 2, MpiLauncher.Scenarios, ["stopped-peer", wait], TimeSpan.FromSeconds(50),
            [("MPIPIPE_STALL_ABORT_SECONDS", "2")]);
        Assert.That(result.TimedOut, Is.False, result.ToString());
        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.ToString());
        Assert.That(result.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)), result.ToString());
        Assert.That(result.Output, Does.Match($@"rank 0: blocked in {Regex.Escape(call)} for [0-9]+ s \(waiting for rank 1\), over MPIPIPE_STALL_ABORT_SECONDS=2: aborting the job"),
            result.ToString());
    }

    public static IEnumerable<MpiFlavor> Flavors => MpiFlavor.All;

    [TestCaseSource(nameof(Flavors))]
    public void BadSettingIsOneMessageAndANonZeroExit(MpiFlavor flavor)
    {
        var result = MpiLauncher.Launch(flavor, 2, MpiLauncher.Scenarios, ["collectives"], TimeSpan.FromSeconds(50),
            [("MPIPIPE_STALL_ABORT_SECONDS", "ten")]);
        Assert.That(result.TimedOut, Is.False, result.ToString());
        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.ToString());
        Assert.That(MpiLauncher.Count(result.Output, "MPIPIPE_STALL_ABORT_SECONDS='ten' is not a number of seconds"), Is.EqualTo(1), result.ToString());
        Assert.That(result.Output, Does.Contain("rank 0: MPIPIPE_STALL_ABORT_SECONDS='ten'"), result.ToString());
        Assert.That(result.Output, Does.Not.Contain("PASS"), result.ToString());
    }
}
