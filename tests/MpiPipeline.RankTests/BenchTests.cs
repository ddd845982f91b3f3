using System.Globalization;
using System.Text.Json;

namespace MpiPipeline.RankTests;

/// <summary>
/// <c>mpipipe bench mpi</c> on real jobs at small sizes and few iterations (a few seconds each): every size of every
/// operation is reported once, by rank 0, with positive finite times; one rank skips ping-pong or refuses it; the C
/// baseline prints lines a script can pair with the C# ones.
/// </summary>
public sealed class BenchTests : RankFixture
{
    private static readonly string[] Quick = ["--max-size", "4096", "--iterations", "0.01", "--samples", "3", "--warmup", "0.01"];
    private static readonly long[] QuickSizes = [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    // Three busy-polling ranks on a 2-core machine make every MPICH message wait for a time slice: keep that run tiny.
    private static readonly string[] Oversubscribed = ["--max-size", "256", "--iterations", "0.005", "--samples", "3", "--warmup", "0.01"];
    private static readonly long[] OversubscribedSizes = [8, 16, 32, 64, 128, 256];

    [TestCaseSource(nameof(Flavors))]
    public void RawLinesCoverEveryOperationAndSizeOnTwoRanks(MpiFlavor flavor)
    {
        var result = Bench(flavor, 2, ["--raw"]);
        var lines = RawLines(result);
        Assert.That(lines.Select(l => (l.Op, l.Size)), Is.EqualTo(
            QuickSizes.Select(s => ("pingpong", s)).Concat(QuickSizes.Select(s => ("allreduce", s)))), result.ToString());
        AssertPlausible(lines, result);
        Assert.That(MpiLauncher.Count(result.Stdout, "# mpipipe bench mpi (C#) ranks=2"), Is.EqualTo(1), result.ToString());
    }

    [TestCaseSource(nameof(Flavors))]
    public void TableOnStdoutAndJsonFileOnTwoRanks(MpiFlavor flavor)
    {
        var json = NewStem($"bench-mpi-{flavor.Name}") + ".json";
        var result = Bench(flavor, 2, ["--json", json]);
        Assert.That(MpiLauncher.Count(result.Stdout, "pingpong"), Is.EqualTo(QuickSizes.Length), result.ToString());
        Assert.That(MpiLauncher.Count(result.Stdout, "allreduce"), Is.EqualTo(QuickSizes.Length), result.ToString());
        Assert.That(result.Stdout, Does.Contain("4 KiB").And.Contain("median µs"), result.ToString());

        using var document = JsonDocument.Parse(File.ReadAllText(json));
        var root = document.RootElement;
        Assert.That(root.GetProperty("WorldSize").GetInt32(), Is.EqualTo(2));
        Assert.That(root.GetProperty("Library").GetString(), Does.Contain(flavor == MpiFlavor.Mpich ? "MPICH" : "Open MPI"));
        var entries = root.GetProperty("Results").EnumerateArray().ToList();
        Assert.That(entries.Select(e => (e.GetProperty("Op").GetString(), e.GetProperty("SizeBytes").GetInt64())), Is.EqualTo(
            QuickSizes.Select(s => ((string?)"pingpong", s)).Concat(QuickSizes.Select(s => ((string?)"allreduce", s)))));
        foreach (var e in entries)
        {
            var min = e.GetProperty("MinMicroseconds").GetDouble();
            var median = e.GetProperty("MedianMicroseconds").GetDouble();
            Assert.That(min, Is.Positive.And.LessThanOrEqualTo(median).And.LessThan(1e6), e.ToString());
            Assert.That(e.GetProperty("MedianBandwidthMBps").GetDouble(), Is.Positive.And.Not.EqualTo(double.PositiveInfinity), e.ToString());
            Assert.That(e.GetProperty("Samples").GetInt32(), Is.EqualTo(3));
        }
    }

    [TestCaseSource(nameof(Flavors))]
    public void OneRankSkipsPingPongAndSaysSo(MpiFlavor flavor)
    {
        var result = Bench(flavor, 1, ["--raw"]);
        var lines = RawLines(result);
        Assert.That(lines.Select(l => (l.Op, l.Size)), Is.EqualTo(QuickSizes.Select(s => ("allreduce", s))), result.ToString());
        AssertPlausible(lines, result);
        Assert.That(MpiLauncher.Count(result.Stderr, "ping-pong skipped: it needs at least 2 ranks"), Is.EqualTo(1), result.ToString());
    }

    [TestCaseSource(nameof(Flavors))]
    public void OneRankAskedOnlyForPingPongFailsWithOneMessage(MpiFlavor flavor)
    {
        var result = MpiLauncher.Launch(flavor, 1, MpiLauncher.Mpipipe, ["bench", "mpi", "--ops", "pingpong", .. Quick], Timeout);
        Assert.That(result.TimedOut, Is.False, result.ToString());
        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.ToString());
        Assert.That(MpiLauncher.Count(result.Output, "ping-pong needs at least 2 ranks"), Is.EqualTo(1), result.ToString());
    }

    [TestCaseSource(nameof(Flavors))]
    public void ThreeRanksRunAllreduceOverAllAndPingPongBetweenTwo(MpiFlavor flavor)
    {
        var result = Bench(flavor, 3, ["--raw", "--ops", "allreduce,pingpong"], Oversubscribed);
        var lines = RawLines(result);
        Assert.That(lines.Select(l => (l.Op, l.Size)), Is.EqualTo(
            OversubscribedSizes.Select(s => ("allreduce", s)).Concat(OversubscribedSizes.Select(s => ("pingpong", s)))), result.ToString());
        AssertPlausible(lines, result);
    }

    [TestCaseSource(nameof(Flavors))]
    public void BadSizeIsAUsageErrorPrintedOnce(MpiFlavor flavor)
    {
        var result = MpiLauncher.Launch(flavor, 2, MpiLauncher.Mpipipe, ["bench", "mpi", "--max-size", "3K"], Timeout);
        Assert.That(result.ExitCode, Is.EqualTo(2), result.ToString());
        Assert.That(MpiLauncher.Count(result.Output, "the largest size (3072 B) must be a power of two"), Is.EqualTo(1), result.ToString());
    }

    /// <summary>The C baseline, built by this MPI's own mpicc, prints the same (op, size) lines in the same format.</summary>
    [TestCaseSource(nameof(Flavors))]
    public void CBaselinePrintsLinesThatPairWithCSharp(MpiFlavor flavor)
    {
        var program = CompileBaseline(flavor);
        var c = MpiLauncher.LaunchProgram(flavor, 2, [program, .. Quick], Timeout);
        Assert.That(c.ExitCode, Is.EqualTo(0), c.ToString());
        var cLines = RawLines(c);
        AssertPlausible(cLines, c);
        Assert.That(c.Stdout, Does.Contain("# mpi_bench (C) ranks=2 library: " + (flavor == MpiFlavor.Mpich ? "MPICH" : "Open MPI")));

        var cs = Bench(flavor, 2, ["--raw"]);
        Assert.That(RawLines(cs).Select(l => (l.Op, l.Size)), Is.EqualTo(cLines.Select(l => (l.Op, l.Size))), cs.ToString());
    }

    private static LaunchResult Bench(MpiFlavor flavor, int ranks, string[] extra, string[]? sizing = null)
    {
        var result = MpiLauncher.Launch(flavor, ranks, MpiLauncher.Mpipipe, ["bench", "mpi", .. sizing ?? Quick, .. extra], Timeout);
        Assert.That(result.TimedOut, Is.False, result.ToString());
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        return result;
    }

    private sealed record RawLine(string Op, long Size, double MinMicroseconds, double MedianMicroseconds);

    /// <summary>Every non-comment stdout line must be "op size min median"; anything else fails the test.</summary>
    private static List<RawLine> RawLines(LaunchResult result)
    {
        var lines = new List<RawLine>();
        foreach (var line in result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (line.StartsWith('#'))
            {
                continue;
            }

            var f = line.Split(' ');
            Assert.That(f, Has.Length.EqualTo(4), $"not a raw line: '{line}'\n{result}");
            lines.Add(new RawLine(f[0], long.Parse(f[1], CultureInfo.InvariantCulture),
                double.Parse(f[2], CultureInfo.InvariantCulture), double.Parse(f[3], CultureInfo.InvariantCulture)));
        }

        return lines;
    }

    private static void AssertPlausible(List<RawLine> lines, LaunchResult result)
    {
        Assert.That(lines, Is.Not.Empty, result.ToString());
        foreach (var l in lines)
        {
            Assert.That(double.IsFinite(l.MinMicroseconds) && double.IsFinite(l.MedianMicroseconds), Is.True, $"{l}\n{result}");
            Assert.That(l.MinMicroseconds, Is.Positive, $"{l}\n{result}");
            Assert.That(l.MedianMicroseconds, Is.GreaterThanOrEqualTo(l.MinMicroseconds).And.LessThan(1e6), $"{l}\n{result}");
        }
    }

    private string CompileBaseline(MpiFlavor flavor)
    {
        var source = Path.Combine(RepoRoot(), "bench", "mpi", "mpi_bench.c");
        var program = NewStem($"mpi_bench_{flavor.Name}");
        var compiled = MpiLauncher.Run($"mpicc.{flavor.Name}", ["-O2", "-o", program, source, "-lm"], Timeout);
        Assert.That(compiled.ExitCode, Is.EqualTo(0), compiled.ToString());
        return program;
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MpiPipeline.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"MpiPipeline.sln not found above {AppContext.BaseDirectory}");
    }
}
