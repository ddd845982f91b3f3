using MpiPipeline.RankTests;

namespace MpiPipeline.TorchSharp.Tests;

/// <summary>
/// The adapter under a real mpiexec, n = 2 and 4, MPICH and Open MPI: one launch per case runs every check of
/// <see cref="Scenario"/> on every rank and then has the last rank throw, so the same launch shows the job ending
/// promptly (MpiRuntime's MPI_Abort) with that rank's message.
/// </summary>
public sealed class DataParallelRankTests
{
    /// <summary>From the throw to the launcher's exit: the failing rank's output grace (0.5 s) and the launcher's teardown.</summary>
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    private static string Program => Path.Combine(AppContext.BaseDirectory, "MpiPipeline.TorchSharp.Tests.dll");

    public static IEnumerable<TestCaseData> Cases() =>
        from flavor in MpiFlavor.All from ranks in new[] { 2, 4 } select new TestCaseData(flavor, ranks);

    [TestCaseSource(nameof(Cases))]
    public void EveryCheckPassesOnEveryRankAndAThrowingRankEndsTheJob(MpiFlavor flavor, int ranks)
    {
        var thrower = ranks - 1;
        var result = MpiLauncher.Launch(flavor, ranks, Program, ["scenario", "--throw-rank", thrower.ToString()],
            TimeSpan.FromSeconds(180), [("OMPI_ALLOW_RUN_AS_ROOT", "1"), ("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")]);
        var ended = DateTimeOffset.UtcNow;
        TestContext.Out.WriteLine(result.ToString());

        Assert.That(result.TimedOut, Is.False, result.ToString());
        foreach (var check in Scenario.Checks)
        {
            for (var rank = 0; rank < ranks; rank++)
            {
                Assert.That(result.Stdout, Does.Contain($"check {check} rank {rank}: ok"), $"{check} on rank {rank}\n{result}");
            }
        }

        Assert.That(result.Stdout, Does.Not.Contain(": FAIL"), result.ToString());

        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.ToString());
        Assert.That(MpiLauncher.Count(result.Stderr, $"rank {thrower}: InvalidOperationException: scenario: rank {thrower} fails on purpose"),
            Is.EqualTo(1), result.ToString());
        var marker = $"rank {thrower} throws at ";
        var at = result.Stdout.IndexOf(marker, StringComparison.Ordinal);
        Assert.That(at, Is.GreaterThanOrEqualTo(0), result.ToString());
        var digits = new string([.. result.Stdout[(at + marker.Length)..].TakeWhile(char.IsAsciiDigit)]);
        var thrown = DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(digits, System.Globalization.CultureInfo.InvariantCulture));
        Assert.That(ended - thrown, Is.LessThan(Prompt), "the job ends promptly after one rank throws");
        TestContext.Out.WriteLine($"{flavor} n={ranks}: job ended {(ended - thrown).TotalSeconds:F1} s after the throw, {result.Elapsed.TotalSeconds:F1} s in all");
    }
}
