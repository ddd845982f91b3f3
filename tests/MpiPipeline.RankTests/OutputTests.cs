namespace MpiPipeline.RankTests;

/// <summary>What the output says besides the results: plain text under Open MPI, each rank's pid and host on request.</summary>
[TestFixture]
[Parallelizable(ParallelScope.None)]
public sealed class OutputTests
{
    /// <summary>
    /// Open MPI gives each rank a pseudo-terminal as stdout: with a real terminal type (TERM=xterm, as in a user's
    /// shell), the output read back through mpirun's pipe must still be plain text, without escape codes.
    /// </summary>
    [Test]
    public void OpenMpiOutputHasNoEscapeCodes()
    {
        var result = MpiLauncher.Launch(MpiFlavor.OpenMpi, 2, MpiLauncher.Mpipipe, ["info"], TimeSpan.FromSeconds(60),
            [("TERM", "xterm")]);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        Assert.That(result.Output, Does.Contain("world size"), result.ToString());
        Assert.That(result.Output, Does.Not.Contain("\u001b"), result.ToString());
    }

    /// <summary>MPICH's hydra names a killed process by pid and host only: MPIPIPE_DEBUG=1 lists which rank is which.</summary>
    [TestCaseSource(typeof(MpiFlavor), nameof(MpiFlavor.All))]
    public void DebugListsEachRanksPidAndHost(MpiFlavor flavor)
    {
        var result = MpiLauncher.Launch(flavor, 2, MpiLauncher.Scenarios, ["collectives"], TimeSpan.FromSeconds(60),
            [("MPIPIPE_DEBUG", "1")]);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        Assert.That(result.Output, Does.Match(@"rank 0: pid [0-9]+ on host \S+"), result.ToString());
        Assert.That(result.Output, Does.Match(@"rank 1: pid [0-9]+ on host \S+"), result.ToString());
    }
}
