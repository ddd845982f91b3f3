using System.Diagnostics;
using MpiPipeline.Benchmarks;

namespace MpiPipeline.Tests.Benchmarks;

[TestFixture]
public sealed class IterationScheduleTests
{
    // size, scale -> warm-up ops, ops per sample: many for small messages, few for large.
    [TestCase(8L, 1.0, 100, 1000)]
    [TestCase(4096L, 1.0, 100, 1000)]
    [TestCase(8192L, 1.0, 51, 512)]
    [TestCase(65536L, 1.0, 6, 64)]
    [TestCase(1048576L, 1.0, 1, 4)]
    [TestCase(4194304L, 1.0, 1, 1)]
    [TestCase(67108864L, 1.0, 1, 1)]
    [TestCase(8L, 0.1, 10, 100)]
    [TestCase(8L, 2.5, 250, 2500)]
    [TestCase(65536L, 0.01, 1, 1)]
    [TestCase(67108864L, 0.001, 1, 1)]
    public void OpsShrinkWithSize(long size, double scale, int warmup, int ops)
    {
        var schedule = IterationSchedule.For(size, scale);
        Assert.That(schedule, Is.EqualTo(new IterationSchedule(warmup, ops, IterationSchedule.DefaultSamples)));
        Assert.That(schedule.TotalOps, Is.EqualTo(warmup + ops * IterationSchedule.DefaultSamples));
    }

    [Test]
    public void OpsNeverGrowWithSize()
    {
        var ops = MessageSizes.Sweep(4, 1L << 30, 2).Select(size => IterationSchedule.For(size, 1).OpsPerSample).ToList();
        Assert.That(ops, Is.Ordered.Descending);
        Assert.That(ops[0], Is.EqualTo(IterationSchedule.MaxOpsPerSample));
        Assert.That(ops[^1], Is.EqualTo(1));
    }

    [TestCase(0.0)]
    [TestCase(-1.0)]
    [TestCase(double.NaN)]
    [TestCase(double.PositiveInfinity)]
    public void RefusesAScaleThatIsNotPositive(double scale) =>
        Assert.That(() => IterationSchedule.For(8, scale), Throws.InstanceOf<ArgumentOutOfRangeException>());

    [Test]
    public void RefusesNonPositiveSizesAndSamples()
    {
        Assert.That(() => IterationSchedule.For(0, 1), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => IterationSchedule.For(8, 1, samples: 0), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    /// <summary>The C baseline must run the same schedule: its --schedule output must equal this one line for line.</summary>
    [TestCase("1", "2")]
    [TestCase("0.25", "4")]
    [TestCase("3", "2")]
    public void CBaselineComputesTheSameSchedule(string scale, string step)
    {
        var program = Path.Combine(Path.GetTempPath(), $"mpi_bench_schedule_{Environment.ProcessId}");
        var source = Path.Combine(RepoPaths.Root, "bench", "mpi", "mpi_bench.c");
        var (compiled, compileOutput) = Run("mpicc.mpich", "-O0", "-o", program, source, "-lm");
        Assert.That(compiled, Is.EqualTo(0), compileOutput);

        var (code, printed) = Run(program, "--min-size", "4", "--max-size", "1G", "--step", step, "--iterations", scale, "--samples", "7", "--schedule");
        Assert.That(code, Is.EqualTo(0), printed);
        var expected = MessageSizes.Sweep(4, 1L << 30, int.Parse(step))
            .Select(size => (size, IterationSchedule.For(size, double.Parse(scale, System.Globalization.CultureInfo.InvariantCulture), 7)))
            .Select(p => $"{p.size} {p.Item2.WarmupOps} {p.Item2.OpsPerSample} {p.Item2.Samples}");
        Assert.That(printed.Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(expected));
    }

    private static (int ExitCode, string Output) Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr);
    }
}
