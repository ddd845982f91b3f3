using MpiPipeline.Dicod;

namespace MpiPipeline.Tests.Dicod;

/// <summary>When dicod.md calls its timings measured under load: by the runs' own core waits, else by the load average.</summary>
[TestFixture]
internal sealed class DicodReportTests
{
    private static DicodResult Run(int ranks, string load, double? waitShare) => new(
        "dicod", ranks, new DicodProblemInfo(2, 4, 1, 64, 1, 2, 1e-6, 1, null, null, 0.01, 0.1), 1.0, 10, 0.5, true, 3, 1, "greedy",
        [0], [10], [0], [0.5], 0, 0, 1, load, [], waitShare);

    [TestCase(0.01, 0.02, 9.0, false, TestName = "High load, but no run that fits the cores waited: not loaded")]
    [TestCase(0.20, 0.01, 1.0, true, TestName = "The one-rank baseline waited 20% of its time: loaded, whatever the load average")]
    [TestCase(0.01, 0.20, 9.0, false, TestName = "Only the 2-rank run waited: its speedups are lower bounds, not loaded")]
    [TestCase(0.05, 0.05, 9.0, false, TestName = "Exactly at the limit: not loaded")]
    public void TheWaitSharesDecideWhereEveryRunHasOne(double oneRank, double twoRanks, double loadAverage, bool loaded)
    {
        var load = $"{loadAverage:F2} 1.00 1.00";
        // The oversubscribed W = 4 run waits by construction (4 ranks, 2 cores) and is not judged.
        var results = new[] { Run(1, load, oneRank), Run(2, load, twoRanks), Run(4, load, 0.5) };
        Assert.That(DicodReport.Loaded(results, cores: 2), Is.EqualTo(loaded));
    }

    [Test]
    public void AMultiRankRunThatWaitedIsListedAsALowerBound()
    {
        var results = new[] { Run(1, "1.00 1.00 1.00", 0.01), Run(2, "1.00 1.00 1.00", 0.08), Run(4, "1.00 1.00 1.00", 0.5) };
        Assert.That(DicodReport.WaitedMultiRank(results, cores: 2).Select(r => r.Ranks), Is.EqualTo(new[] { 2 }));
    }

    [TestCase("9.00 1.00 1.00", true)]
    [TestCase("1.50 1.00 1.00", false)]
    public void WithoutWaitSharesTheLoadAverageDecides(string load, bool loaded)
    {
        var results = new[] { Run(1, load, 0.0), Run(2, load, null) };
        Assert.That(DicodReport.Loaded(results, cores: 2), Is.EqualTo(loaded));
    }
}
