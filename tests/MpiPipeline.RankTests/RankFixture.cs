using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.RegularExpressions;

// Every test starts MPI jobs whose ranks take all the cores, so no two tests ever run at once.
[assembly: Parallelizable(ParallelScope.None)]

namespace MpiPipeline.RankTests;

/// <summary>
/// What the rank-test fixtures share: the MPIs and rank counts their cases run on, a work directory (made on first use,
/// removed after the fixture), <c>mpipipe train</c> with its output files read back, and the checks of a job that
/// bad input stops.
/// </summary>
public abstract class RankFixture
{
    /// <summary>A training or experiment job: a few seconds on 2 cores, far more when oversubscribed.</summary>
    protected static readonly TimeSpan Limit = TimeSpan.FromSeconds(120);

    /// <summary>What "promptly" means for a job that fails: no rank may hang.</summary>
    protected static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    private string? workDirectory;

    public static IEnumerable<MpiFlavor> Flavors => MpiFlavor.All;

    /// <summary>This fixture's own temporary directory.</summary>
    protected string WorkDirectory => workDirectory ??= Directory.CreateTempSubdirectory($"mpipipe-{GetType().Name}-").FullName;

    [OneTimeTearDown]
    public void RemoveWorkDirectory()
    {
        if (workDirectory is not null)
        {
            Directory.Delete(workDirectory, recursive: true);
        }
    }

    /// <summary>Every MPI at each of <paramref name="ranks"/>, the cases named (flavor, n=ranks).</summary>
    protected static IEnumerable<TestCaseData> FlavorsAndRanks(params int[] ranks) =>
        from flavor in MpiFlavor.All
        from n in ranks
        select new TestCaseData(flavor, n).SetArgDisplayNames(flavor.Name, $"n={n}");

    /// <summary>A fresh path in the work directory, without an extension.</summary>
    protected string NewStem(string name) => Path.Combine(WorkDirectory, $"{name}-{Guid.NewGuid():N}");

    protected sealed record TrainRun(float[] Parameters, float[] FirstGradients, JsonElement Json, string Output, string TracePath);

    /// <summary>
    /// <c>mpipipe train</c>, which must succeed: its results, final parameters and, when asked, the first mini-batch's
    /// gradients (empty otherwise) and a Chrome trace (at <see cref="TrainRun.TracePath"/>).
    /// </summary>
    protected TrainRun Train(MpiFlavor flavor, int ranks, string name, string[] args, bool firstGradients = false, bool trace = false,
        IEnumerable<(string Key, string Value)>? environment = null)
    {
        var stem = NewStem($"{flavor.Name}-{name}-n{ranks}");
        string[] gradientArgs = firstGradients ? ["--save-first-gradients", stem + ".grad"] : [];
        string[] traceArgs = trace ? ["--trace", stem + ".trace.json"] : [];
        var result = MpiLauncher.Launch(flavor, ranks, MpiLauncher.Mpipipe,
            ["train", .. args, .. traceArgs, "--output", stem + ".json", "--save-parameters", stem + ".bin", .. gradientArgs], Limit, environment);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        using var json = JsonDocument.Parse(File.ReadAllText(stem + ".json"));
        return new TrainRun(Floats(stem + ".bin"), firstGradients ? Floats(stem + ".grad") : [], json.RootElement.Clone(), result.Output,
            stem + ".trace.json");
    }

    /// <summary>Bad input stopped the job: every rank exited non-zero within <paramref name="within"/>, no rank but 0
    /// spoke, no stack trace, no results file at <paramref name="output"/>.</summary>
    protected static void AssertStoppedByBadInput(LaunchResult result, TimeSpan within, string output)
    {
        AssertFailedWithin(result, within);
        Assert.That(Regex.IsMatch(result.Output, "rank [1-9][0-9]*: "), Is.False, "only rank 0 reports: " + result);
        Assert.That(result.Output, Does.Not.Contain("   at "), "no stack trace: " + result);
        Assert.That(File.Exists(output), Is.False, "no results file from a failed run");
    }

    /// <summary>The job ended by itself (no rank hung) within <paramref name="within"/>, with a non-zero exit status.</summary>
    protected static void AssertFailedWithin(LaunchResult result, TimeSpan within)
    {
        Assert.That(result.TimedOut, Is.False, result.ToString());
        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.ToString());
        Assert.That(result.Elapsed, Is.LessThan(within), result.ToString());
    }

    protected static float[] Floats(string path) => MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(path)).ToArray();

    protected static double MaxDifference(float[] a, float[] b)
    {
        Assert.That(b, Has.Length.EqualTo(a.Length));
        var max = 0.0;
        for (var i = 0; i < a.Length; i++)
        {
            max = Math.Max(max, Math.Abs((double)a[i] - b[i]));
        }

        return max;
    }
}
