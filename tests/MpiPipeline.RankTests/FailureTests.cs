namespace MpiPipeline.RankTests;

/// <summary>No-hang tests: each failure makes the whole job exit non-zero promptly with one clear message.</summary>
public sealed class FailureTests : RankFixture
{
    public static IEnumerable<TestCaseData> Cases() => FlavorsAndRanks(2, 3, 4);

    [TestCaseSource(nameof(Cases))]
    public void ExceptionOnOneRankAbortsTheJobAndNamesTheRank(MpiFlavor flavor, int ranks)
    {
        var failing = ranks - 1;
        var result = MpiLauncher.Launch(flavor, ranks, MpiLauncher.Scenarios, ["throw-on-rank", failing.ToString()], Prompt * 3);
        AssertFailedWithin(result, Prompt);
        Assert.That(MpiLauncher.Count(result.Output, $"rank {failing}: InvalidOperationException: deliberate failure on rank {failing}"), Is.EqualTo(1), result.ToString());
    }

    [TestCaseSource(nameof(Cases))]
    public void ExceptionWhilePeersAreBlockedInRecvDoesNotHang(MpiFlavor flavor, int ranks)
    {
        var result = MpiLauncher.Launch(flavor, ranks, MpiLauncher.Scenarios, ["throw-on-rank-while-peers-wait", "0"], Prompt * 3);
        AssertFailedWithin(result, Prompt);
        Assert.That(MpiLauncher.Count(result.Output, "rank 0: InvalidOperationException: deliberate failure on rank 0 mid-pipeline"), Is.EqualTo(1), result.ToString());
    }

    public static IEnumerable<TestCaseData> PollingWaits() =>
        from flavor in MpiFlavor.All
        from ranks in new[] { 2, 4 }
        from wait in new[] { "allreduce", "irecv" }
        select new TestCaseData(flavor, ranks, wait).SetArgDisplayNames(flavor.Name, $"n={ranks}", wait);

    /// <summary>Ranks that sleep between MPI_Test polls (oversubscribed nodes) are still taken down promptly.</summary>
    [TestCaseSource(nameof(PollingWaits))]
    public void ExceptionWhilePeersPollAndSleepDoesNotHang(MpiFlavor flavor, int ranks, string wait)
    {
        var failing = ranks - 1;
        var result = MpiLauncher.Launch(flavor, ranks, MpiLauncher.Scenarios, ["throw-on-rank-while-peers-poll", failing.ToString(), wait], Prompt * 3);
        AssertFailedWithin(result, Prompt);
        Assert.That(MpiLauncher.Count(result.Output, $"rank {failing}: InvalidOperationException: deliberate failure on rank {failing} while its peers poll"),
            Is.EqualTo(1), result.ToString());
    }

    [TestCaseSource(nameof(Flavors))]
    public void InputErrorSeenByEveryRankIsReportedOnceByRankZero(MpiFlavor flavor)
    {
        var result = MpiLauncher.Launch(flavor, 4, MpiLauncher.Scenarios, ["input-error"], Prompt * 3);
        AssertFailedWithin(result, Prompt);
        Assert.That(MpiLauncher.Count(result.Output, "the scenario's input is bad"), Is.EqualTo(1), result.ToString());
        Assert.That(result.Output, Does.Contain("rank 0: the scenario's input is bad"), result.ToString());
    }

    [TestCaseSource(nameof(Flavors))]
    public void WatchdogReportsAndAbortsAStalledJob(MpiFlavor flavor)
    {
        var result = MpiLauncher.Launch(flavor, 2, MpiLauncher.Scenarios, ["stall"], Prompt * 3,
            [("MPIPIPE_STALL_ABORT_SECONDS", "2")]);
        AssertFailedWithin(result, Prompt);
        Assert.That(result.Output, Does.Match("rank [01]: blocked in MPI_(Recv|Barrier) for [0-9]+ s"), result.ToString());
    }

    [TestCaseSource(nameof(Flavors))]
    public void UnknownVerbIsAUsageErrorPrintedOnce(MpiFlavor flavor)
    {
        var result = MpiLauncher.Launch(flavor, 2, MpiLauncher.Mpipipe, ["frobnicate"], Prompt * 3);
        Assert.That(result.ExitCode, Is.EqualTo(2), result.ToString());
        Assert.That(MpiLauncher.Count(result.Output, "Run 'mpipipe --help' for usage."), Is.EqualTo(1), result.ToString());
        Assert.That(result.Output, Does.Contain("frobnicate"), result.ToString());
    }

    [TestCaseSource(nameof(Flavors))]
    public void UnknownFlagIsAUsageErrorPrintedOnce(MpiFlavor flavor)
    {
        var result = MpiLauncher.Launch(flavor, 3, MpiLauncher.Mpipipe, ["info", "--no-such-flag"], Prompt * 3);
        Assert.That(result.ExitCode, Is.EqualTo(2), result.ToString());
        Assert.That(MpiLauncher.Count(result.Output, "--no-such-flag"), Is.EqualTo(1), result.ToString());
    }

    [TestCaseSource(nameof(Flavors))]
    public void BadLibraryOverrideNamesWhatWasTried(MpiFlavor flavor)
    {
        var result = MpiLauncher.Launch(flavor, 2, MpiLauncher.Mpipipe, ["info"], Prompt * 3,
            [("MPIPIPE_MPI_LIB", "/nonexistent/libmpi-missing.so")]);
        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.ToString());
        Assert.That(result.Output, Does.Contain("MPIPIPE_MPI_LIB is set to '/nonexistent/libmpi-missing.so'"), result.ToString());
        Assert.That(result.Output, Does.Contain("Tried: /nonexistent/libmpi-missing.so ("), result.ToString());
    }

    /// <summary>Open MPI's launcher with the MPICH library: N one-rank worlds. Each must fail, not run alone.</summary>
    [Test]
    public void LauncherAndLibraryFromDifferentMpisFailLoudly()
    {
        var result = MpiLauncher.Launch(MpiFlavor.OpenMpi, 2, MpiLauncher.Mpipipe, ["info"], Prompt * 3,
            [("MPIPIPE_MPI_LIB", "libmpich.so.12")]);
        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.ToString());
        Assert.That(result.Output, Does.Contain("MPI world size is 1 but the launcher started 2 processes (OMPI_COMM_WORLD_SIZE=2)"), result.ToString());
        Assert.That(result.Output, Does.Not.Contain("world size     "), result.ToString());
    }
}
