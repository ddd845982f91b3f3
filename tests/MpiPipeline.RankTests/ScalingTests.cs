using System.Xml.Linq;

namespace MpiPipeline.RankTests;

/// <summary>
/// <c>mpipipe scaling</c> end to end: the driver (a plain process) starts real mpiexec.mpich jobs at 1, 2 and 4 ranks
/// (strong scaling, the small model, a few steps) and one small `bench mpi` job, fits the model, and writes the CSV
/// files, the markdown report and the plots.
/// </summary>
public sealed class ScalingTests : RankFixture
{
    private static LaunchResult Scaling(params string[] args) => MpiLauncher.RunMpipipe(["scaling", .. args], Limit);

    [Test]
    public void SweepAtOneTwoAndFourRanksWritesTablesPlotsAndTheModel()
    {
        var result = Scaling(
            "--ranks", "1,2,4", "--mode", "strong", "--repetitions", "1", "--model", "mlp", "--global-batch", "64",
            "--steps", "4", "--warmup-steps", "1", "--train-args", $"--data {FashionMnistPrefix.Location} --train-samples 512 --test-samples 100",
            "--bench-ranks", "2", "--bench-samples", "2", "--bench-max-size", "32KiB", "--timeout", "60", "--out", WorkDirectory);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());

        var csv = File.ReadAllLines(Path.Combine(WorkDirectory, "scaling.csv"));
        Assert.That(csv[0], Does.StartWith("mode,ranks,global_batch,per_rank_batch,repetitions,throughput_median"));
        Assert.That(csv.Skip(1).Select(l => l.Split(',')[1]), Is.EqualTo(new[] { "1", "2", "4" }));
        Assert.That(csv[1].Split(',')[16], Is.EqualTo("1"), "efficiency of the baseline");
        Assert.That(csv.Skip(1).Select(l => l.Split(',')[^1]), Is.All.EqualTo("native"), "no emulated network");
        Assert.That(File.ReadAllLines(Path.Combine(WorkDirectory, "scaling-runs.csv")), Has.Length.EqualTo(4));

        var md = File.ReadAllText(Path.Combine(WorkDirectory, "scaling.md"));
        Assert.That(md, Does.Contain("## Strong scaling (global batch 64").And.Contain("### Fitted parameters")
            .And.Contain("### Validation against the measured points").And.Contain("### Projections with the fitted parameters"));
        AssertOversubscriptionIsReportedExactly(md, csv, result.Stdout, [1, 2, 4]);
        // The projections carry the verdict: marked unvalidated exactly when the model missed its bound.
        Assert.That(md.Contains("(UNVALIDATED)", StringComparison.Ordinal), Is.EqualTo(md.Contains("off by more than 25%", StringComparison.Ordinal)), md);

        foreach (var svg in new[] { "scaling-speedup.svg", "scaling-breakdown-strong.svg", "scaling-projection.svg" })
        {
            Assert.That(XDocument.Load(Path.Combine(WorkDirectory, svg)).Root!.Name.LocalName, Is.EqualTo("svg"), svg);
        }

        Assert.That(result.Stdout, Does.Contain("model: Allreduce alpha"));
        Assert.That(File.Exists(Path.Combine(WorkDirectory, "runs", "bench-n2.json")));
    }

    /// <summary>
    /// A point is oversubscribed when its ranks (one thread each) outnumber the cores this process may use:
    /// Environment.ProcessorCount, which honours the affinity mask, a cgroup CPU limit and DOTNET_PROCESSOR_COUNT, and
    /// which the driver, started by this process, inherits. The expectation is computed from that count, so on 2 cores
    /// the 4-rank point must be flagged and on 16 cores none, and a note where no point is oversubscribed fails as
    /// surely as a missing one.
    /// </summary>
    private static void AssertOversubscriptionIsReportedExactly(string md, string[] csv, string stdout, int[] ranks)
    {
        var cores = Environment.ProcessorCount;
        var over = ranks.Where(n => n > cores).ToArray();
        var column = Array.IndexOf(csv[0].Split(','), "oversubscribed");
        Assert.That(csv.Skip(1).Select(l => l.Split(',')[column]), Is.EqualTo(ranks.Select(n => n > cores ? "true" : "false")),
            $"scaling.csv's oversubscribed column on {cores} cores");
        // The note as the report (a "**Note:**" paragraph) and the console ("note: ") give it; the bare word also
        // occurs in the verdict's wording ("a point that is not oversubscribed: ...").
        const string Note = "oversubscribed: ";
        if (over.Length > 0)
        {
            var note = $"{Note}{string.Join(", ", over)} ranks x 1 thread(s) is more than the {cores} cores available";
            Assert.That(md, Does.Contain("**Note:** " + note), $"{string.Join(", ", over)} ranks on {cores} cores is said so");
            Assert.That(stdout, Does.Contain("note: " + note));
        }
        else
        {
            Assert.That(md, Does.Not.Contain("**Note:** " + Note), $"no point is oversubscribed on {cores} cores");
            Assert.That(stdout, Does.Not.Contain("note: " + Note));
        }
    }

    [Test]
    public void BadInputIsOneMessageBeforeAnyJob()
    {
        var result = Scaling("--ranks", "1,3", "--global-batch", "64", "--out", WorkDirectory);
        Assert.That(result.ExitCode, Is.EqualTo(1), result.ToString());
        Assert.That(result.Stderr, Does.Contain("must be divisible by every rank count; it is not by 3"));
        Assert.That(result.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)));

        result = Scaling("--ranks", "1,x");
        Assert.That(result.ExitCode, Is.EqualTo(2), result.ToString());
        Assert.That(result.Stderr, Does.Contain("'x' is not an integer"));
    }
}
