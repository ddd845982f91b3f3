using System.Globalization;

namespace MpiPipeline.RankTests;

/// <summary>
/// <c>mpipipe bench bridge</c> for real, a handful of steps (a few seconds, mostly loading Fashion-MNIST): started
/// without mpiexec as make bench starts it (MPICH singleton), it prints its comment lines, the header and one result
/// line in the C++ baseline's format; on more than one rank it refuses, once.
/// </summary>
public sealed class BenchBridgeTests : RankFixture
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    [Test]
    public void WithoutMpiexecItPrintsOneResultLine()
    {
        var result = MpiLauncher.RunMpipipe(["bench", "bridge", "--model", "mlp", "--threads", "1", "--steps", "5", "--warmup", "1"], Timeout);
        Assert.That(result.TimedOut, Is.False, result.ToString());
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.That(lines.Count(l => l.StartsWith("# mpipipe bench bridge (C#): model mlp, threads 1, batch 128, 1 warm-up + 5 timed steps", StringComparison.Ordinal)),
            Is.EqualTo(1), result.ToString());
        var header = Array.IndexOf(lines, "model threads batch steps mean_ms median_ms min_ms loss_sum correct_sum first_loss order");
        Assert.That(header, Is.GreaterThanOrEqualTo(0), result.ToString());
        Assert.That(lines, Has.Length.EqualTo(header + 2), result.ToString());

        var f = lines[header + 1].Split(' ');
        Assert.That(f, Has.Length.EqualTo(11), result.ToString());
        Assert.That(f[..4], Is.EqualTo(new[] { "mlp", "1", "128", "5" }), result.ToString());
        var mean = double.Parse(f[4], CultureInfo.InvariantCulture);
        var median = double.Parse(f[5], CultureInfo.InvariantCulture);
        var min = double.Parse(f[6], CultureInfo.InvariantCulture);
        Assert.That(min, Is.Positive.And.LessThanOrEqualTo(median).And.LessThanOrEqualTo(mean), result.ToString());
        Assert.That(mean, Is.LessThan(10_000), result.ToString());
        // Five steps of an untrained 10-class model: a mean loss near ln 10 = 2.3 each.
        Assert.That(double.Parse(f[7], CultureInfo.InvariantCulture), Is.InRange(5 * 0.5, 5 * 3.0), result.ToString());
        Assert.That(long.Parse(f[8], CultureInfo.InvariantCulture), Is.InRange(0, 5 * 128), result.ToString());
        Assert.That(double.Parse(f[9], CultureInfo.InvariantCulture), Is.InRange(1.5, 3.0), result.ToString());
        Assert.That(f[10], Does.Match("^[0-9a-f]{16}$"), result.ToString());
    }

    [Test]
    public void OnTwoRanksItRefusesOnce()
    {
        var result = MpiLauncher.Launch(MpiFlavor.Mpich, 2, MpiLauncher.Mpipipe, ["bench", "bridge", "--steps", "1", "--warmup", "0"], Timeout);
        Assert.That(result.TimedOut, Is.False, result.ToString());
        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.ToString());
        Assert.That(MpiLauncher.Count(result.Output, "bench bridge measures one process; the job has 2 ranks"), Is.EqualTo(1), result.ToString());
    }
}
