using System.Diagnostics;

namespace MpiPipeline.Tests.Benchmarks;

/// <summary>
/// The verdict rules of bench/mpi/report.awk (the table `make bench-mpi` commits) on literal medians: a relative cap
/// at 8 B next to the absolute +1 us, and a fixed cap on the A/A noise band.
/// </summary>
[TestFixture]
public sealed class MpiReportTests
{
    // size, C us, C# us, C again us (0: no control) -> verdict
    [TestCase(8L, 0.18, 0.20, 0.18, "met")]
    [TestCase(8L, 0.18, 0.31, 0.18, "**missed**")] // +0.13 us is inside +1 us, but 1.72x is not
    [TestCase(8L, 0.18, 0.2232, 0.18, "met")] // 1.24x
    [TestCase(8L, 2.0, 3.2, 2.0, "**missed**")] // +1.2 us
    [TestCase(65536L, 10.0, 10.2, 10.0, "met")]
    [TestCase(65536L, 10.0, 10.5, 10.8, "within noise")] // 1.05x inside an A/A band of 1.08x
    [TestCase(65536L, 10.0, 10.5, 10.2, "**missed**")] // outside a 1.02x band
    [TestCase(65536L, 10.0, 13.0, 14.7, "**missed**")] // a 1.47x control must not excuse 1.30x: the band stops at 1.10
    [TestCase(65536L, 10.0, 10.9, 7.0, "within noise")] // the inverse of 0.70 is 1.43, capped to 1.10, and 1.09 < 1.10
    [TestCase(65536L, 10.0, 10.5, 0.0, "**missed**")]
    public void VerdictFollowsTheRules(long size, double c, double cs, double again, string verdict)
    {
        var lines = new List<string>
        {
            $"mpich.c.1.pingpong pingpong {size} {c} {c}",
            $"mpich.cs.1.pingpong pingpong {size} {cs} {cs}",
        };
        if (again > 0)
        {
            lines.Add($"mpich.cc.1.pingpong pingpong {size} {again} {again}");
        }

        var report = Report(lines);
        var row = report.Split('\n').Single(line => line.StartsWith($"| {Label(size)} |", StringComparison.Ordinal));
        Assert.That(row.Split('|')[7].Trim(), Is.EqualTo(verdict), report);
    }

    [Test]
    public void SummaryCountsEachVerdictOnce()
    {
        var report = Report(
        [
            "mpich.c.1.allreduce allreduce 8 0.2 0.2", "mpich.cs.1.allreduce allreduce 8 0.4 0.4",
            "mpich.c.1.allreduce allreduce 65536 10 10", "mpich.cs.1.allreduce allreduce 65536 10.1 10.1",
            "mpich.c.1.allreduce allreduce 131072 20 20", "mpich.cs.1.allreduce allreduce 131072 21 21",
            "mpich.cc.1.allreduce allreduce 131072 21.5 21.5",
        ]);
        Assert.That(report, Does.Contain("| mpich | allreduce | 1 of 3 | 1 | 8 B | 1 of 3 |"), report);
    }

    private static string Label(long size) => size >= 1024 ? $"{size / 1024} KiB" : $"{size} B";

    private static string Report(IEnumerable<string> lines)
    {
        var start = new ProcessStartInfo("awk")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        foreach (var a in new[]
                 {
                     "-v", "flavors=mpich", "-v", "ops=pingpong allreduce", "-v", "noise_cap=1.10", "-v", "small_cap=1.25",
                     "-f", Path.Combine(RepoPaths.Root, "bench", "mpi", "report.awk"),
                 })
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        process.StandardInput.Write(string.Join('\n', lines) + "\n");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.EqualTo(0), stderr);
        return stdout.Result;
    }
}
