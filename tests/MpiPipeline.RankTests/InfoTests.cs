using System.Text.Json;

namespace MpiPipeline.RankTests;

/// <summary><c>mpipipe info</c> on a real job: one report, from rank 0, describing every rank.</summary>
public sealed class InfoTests : RankFixture
{
    public static IEnumerable<TestCaseData> Cases() => FlavorsAndRanks(1, 4);

    [TestCaseSource(nameof(Cases))]
    public void JsonReportDescribesEveryRank(MpiFlavor flavor, int ranks)
    {
        var result = MpiLauncher.Launch(flavor, ranks, MpiLauncher.Mpipipe, ["info", "--json"]);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        using var json = JsonDocument.Parse(result.Stdout);
        var root = json.RootElement;
        Assert.That(root.GetProperty("WorldSize").GetInt32(), Is.EqualTo(ranks));
        Assert.That(root.GetProperty("Abi").GetString(), Does.StartWith(flavor == MpiFlavor.Mpich ? "MPICH ABI" : "Open MPI ABI"));
        Assert.That(root.GetProperty("Library").GetString(), Does.Contain(flavor == MpiFlavor.Mpich ? "MPICH" : "Open MPI"));
        Assert.That(root.GetProperty("ThreadLevel").GetString(), Is.EqualTo("MPI_THREAD_MULTIPLE"));
        var perRank = root.GetProperty("Ranks").EnumerateArray().ToList();
        Assert.That(perRank.Select(r => r.GetProperty("Rank").GetInt32()), Is.EqualTo(Enumerable.Range(0, ranks)));
        Assert.That(perRank.Select(r => r.GetProperty("NodeRank").GetInt32()), Is.EqualTo(Enumerable.Range(0, ranks)));
        Assert.That(perRank.Select(r => r.GetProperty("NodeSize").GetInt32()), Is.All.EqualTo(ranks));
        Assert.That(perRank.Select(r => r.GetProperty("Pid").GetInt32()).Distinct().Count(), Is.EqualTo(ranks));
    }

    [TestCaseSource(nameof(Cases))]
    public void TableIsPrintedOnceByRankZero(MpiFlavor flavor, int ranks)
    {
        var result = MpiLauncher.Launch(flavor, ranks, MpiLauncher.Mpipipe, ["info"]);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        Assert.That(MpiLauncher.Count(result.Stdout, "world size"), Is.EqualTo(1), result.ToString());
        Assert.That(result.Stdout, Does.Match($@"world size\s+{ranks}\b"), result.ToString());
    }
}
