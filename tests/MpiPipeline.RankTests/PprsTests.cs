using System.Text.Json;

namespace MpiPipeline.RankTests;

/// <summary>
/// <c>mpipipe pprs</c> under a real mpiexec: GD, AGD and PPRS pipelined over 2-4 ranks (the chain's nodes spread over
/// them) give the one-rank run's numbers exactly, the clock is 2 (K + Delta - 1) time units per iteration, and bad
/// input stops every rank with one message.
/// </summary>
public sealed class PprsTests : RankFixture
{
    /// <summary>
    /// Eq. 8 on d = 21 through a chain of Delta = 7 nodes, as a finite sum of m = 2 terms (2 micro-batches per point);
    /// f monitored by forward passes over the ranks (not the closed form), so values and gradients both cross the ranks.
    /// </summary>
    private static readonly string[] NonSmooth =
    [
        "--problem", "nonsmooth", "--delta", "7", "--dimension", "21", "--iterations", "12", "--samples", "1,5", "--method", "all",
        "--monitor", "pipeline", "--seed", "3", "--terms", "2",
    ];

    /// <summary>The Figure 3 problem, small: an untrained res-mlp of 6 layers of width 8, 2 images, Delta = 6.</summary>
    private static readonly string[] Adversarial =
    [
        "--problem", "adversarial", "--model", "res-mlp:6:8", "--delta", "6", "--images", "2", "--iterations", "4", "--samples", "3",
        "--method", "gd,pprs", "--kappa", "1", "--lambda", "0.1", "--step", "0.1", "--gamma", "0.05",
    ];

    private readonly Dictionary<string, JsonElement> oneRank = [];

    public static IEnumerable<TestCaseData> PipelineCases() => FlavorsAndRanks(2, 4);

    /// <summary>Pipelined over n ranks = one rank, bit for bit, for GD, AGD and PPRS with K = 1 and 5.</summary>
    [TestCaseSource(nameof(PipelineCases))]
    public void PipelinedRunEqualsTheOneRankRunExactly(MpiFlavor flavor, int ranks)
    {
        var reference = OneRank(flavor, "nonsmooth", NonSmooth);
        var pipelined = Pprs(flavor, ranks, $"nonsmooth-n{ranks}", NonSmooth);
        Assert.That(pipelined.GetProperty("ranks").GetInt32(), Is.EqualTo(ranks));
        Assert.That(pipelined.GetProperty("nodesPerRank").GetArrayLength(), Is.EqualTo(ranks));
        AssertSameCurves(reference, pipelined, expectedRuns: 4);
    }

    /// <summary>
    /// The clock of the multi-rank run is measured by the ranks' dependency clock (ready times travel with the
    /// messages), not computed from the formula: 2 (K m + Delta - 1) per iteration for GD and AGD (K = 1) and PPRS, and
    /// every rank did K m forwards and backwards per node per call (3 ranks: 3, 2, 2 of the 7 nodes). The same run
    /// one micro-batch at a time (no pipelining) measures 2 K m Delta: the clock sees the schedule that ran.
    /// </summary>
    [Test]
    public void TheMeasuredClockFollowsTheScheduleThatRan()
    {
        const int depth = 7, m = 2;
        long[] nodes = [3, 2, 2];
        var run = Pprs(MpiFlavor.Mpich, 3, "clock", NonSmooth);
        var samplesSeen = new List<int>();
        foreach (var method in run.GetProperty("runs").EnumerateArray())
        {
            var k = method.GetProperty("samples").GetInt32();
            samplesSeen.Add(k);
            Assert.That(method.GetProperty("timeUnitsPerIteration").GetInt64(), Is.EqualTo(2 * (k * m + depth - 1)));
            var curve = method.GetProperty("curve").EnumerateArray().ToList();
            Assert.That(curve, Has.Count.EqualTo(13));
            foreach (var point in curve)
            {
                Assert.That(point.GetProperty("timeUnits").GetInt64(), Is.EqualTo(point.GetProperty("iteration").GetInt64() * 2 * (k * m + depth - 1)));
            }

            var calls = method.GetProperty("calls").GetInt64();
            Assert.That(calls, Is.EqualTo(12));
            var expected = nodes.Select(n => calls * k * m * n).ToArray();
            Assert.That(Longs(method.GetProperty("forwardOperationsPerRank")), Is.EqualTo(expected), "forwards per rank");
            Assert.That(Longs(method.GetProperty("backwardOperationsPerRank")), Is.EqualTo(expected), "backwards per rank");
        }

        Assert.That(samplesSeen, Is.EqualTo(new[] { 1, 1, 1, 5 }), "GD, AGD, PPRS K = 1, PPRS K = 5");

        string[] oneAtATime =
        [
            "--problem", "nonsmooth", "--delta", "7", "--dimension", "21", "--iterations", "3", "--samples", "3", "--method", "pprs",
            "--terms", "2", "--schedule", "one-at-a-time",
        ];
        var sequential = Pprs(MpiFlavor.OpenMpi, 2, "clock-one-at-a-time", oneAtATime).GetProperty("runs")[0];
        Assert.That(sequential.GetProperty("timeUnitsPerIteration").GetInt64(), Is.EqualTo(2 * 3 * m * depth), "2 K m Delta");
        Assert.That(Longs(sequential.GetProperty("forwardOperationsPerRank")), Is.EqualTo(new long[] { 3 * 3 * m * 4, 3 * 3 * m * 3 }));
        var pipelinedValues = Pprs(MpiFlavor.OpenMpi, 1, "clock-pipelined", oneAtATime[..^2]).GetProperty("runs")[0].GetProperty("curve")
            .EnumerateArray().Select(p => p.GetProperty("value").GetDouble());
        Assert.That(sequential.GetProperty("curve").EnumerateArray().Select(p => p.GetProperty("value").GetDouble()), Is.EqualTo(pipelinedValues),
            "the schedule changes the clock, not the numbers");

        static long[] Longs(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt64()).ToArray();
    }

    /// <summary>The adversarial problem's torch-backed nodes, pipelined over 3 ranks (2 nodes each), equal the one-rank run.</summary>
    [TestCaseSource(nameof(Flavors))]
    public void PipelinedAdversarialRunEqualsTheOneRankRunExactly(MpiFlavor flavor)
    {
        var reference = OneRank(flavor, "adversarial", Adversarial);
        var pipelined = Pprs(flavor, 3, "adversarial-n3", Adversarial);
        AssertSameCurves(reference, pipelined, expectedRuns: 2);
    }

    public static IEnumerable<TestCaseData> BadInputs()
    {
        foreach (var flavor in MpiFlavor.All)
        {
            yield return Case(flavor, "delta < 1", ["--delta", "0"], "--delta 0: the depth Delta of the chain must be >= 1");
            yield return Case(flavor, "K < 1", ["--samples", "4,0"], "--samples 0: PPRS needs K >= 1");
            yield return Case(flavor, "more ranks than nodes", ["--delta", "2"], "3 ranks for a chain of Delta = 2 nodes");
            yield return Case(flavor, "unknown problem", ["--problem", "rosenbrock"], "rosenbrock");
            yield return Case(flavor, "m does not divide the images", ["--problem", "adversarial", "--images", "3", "--terms", "2"],
                "--terms 2: the adversarial problem splits its --images 3 into m equal groups");
        }

        static TestCaseData Case(MpiFlavor flavor, string name, string[] args, string message) =>
            new TestCaseData(flavor, args, message).SetArgDisplayNames(flavor.Name, name);
    }

    /// <summary>Bad input: one clear message from rank 0, every rank exits non-zero within seconds, no results file.</summary>
    [TestCaseSource(nameof(BadInputs))]
    public void BadInputIsReportedOnceAndEveryRankExits(MpiFlavor flavor, string[] args, string message)
    {
        var output = NewStem("bad") + ".json";
        var result = MpiLauncher.Launch(flavor, 3, MpiLauncher.Mpipipe, ["pprs", "--iterations", "3", .. args, "--output", output], TimeSpan.FromSeconds(60));
        AssertStoppedByBadInput(result, TimeSpan.FromSeconds(20), output);
        Assert.That(MpiLauncher.Count(result.Output, message), Is.EqualTo(1), "one message: " + result);
    }

    private static void AssertSameCurves(JsonElement reference, JsonElement pipelined, int expectedRuns)
    {
        var a = reference.GetProperty("runs").EnumerateArray().ToList();
        var b = pipelined.GetProperty("runs").EnumerateArray().ToList();
        Assert.That(b, Has.Count.EqualTo(a.Count).And.Count.EqualTo(expectedRuns));
        for (var r = 0; r < a.Count; r++)
        {
            var label = a[r].GetProperty("label").GetString();
            Assert.That(b[r].GetProperty("label").GetString(), Is.EqualTo(label));
            var ca = a[r].GetProperty("curve").EnumerateArray().ToList();
            var cb = b[r].GetProperty("curve").EnumerateArray().ToList();
            Assert.That(cb, Has.Count.EqualTo(ca.Count), label);
            for (var i = 0; i < ca.Count; i++)
            {
                Assert.That(cb[i].GetProperty("value").GetDouble(), Is.EqualTo(ca[i].GetProperty("value").GetDouble()), $"{label}, iteration {i}: f must be bit-identical");
                Assert.That(cb[i].GetProperty("timeUnits").GetInt64(), Is.EqualTo(ca[i].GetProperty("timeUnits").GetInt64()), $"{label}, iteration {i}");
            }

            var first = ca[0].GetProperty("value").GetDouble();
            Assert.That(ca.Select(p => p.GetProperty("value").GetDouble()), Has.Some.Not.EqualTo(first), $"{label}: the run must move f");
        }
    }

    private JsonElement OneRank(MpiFlavor flavor, string name, string[] args)
    {
        var key = $"{flavor.Name}-{name}";
        if (!oneRank.TryGetValue(key, out var json))
        {
            json = Pprs(flavor, 1, $"{name}-n1", args);
            oneRank[key] = json;
        }

        return json;
    }

    private JsonElement Pprs(MpiFlavor flavor, int ranks, string name, string[] args)
    {
        var path = NewStem($"{flavor.Name}-{name}") + ".json";
        var result = MpiLauncher.Launch(flavor, ranks, MpiLauncher.Mpipipe, ["pprs", .. args, "--output", path], Limit,
            [("MPIPIPE_TORCH_THREADS", "1")]);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        return document.RootElement.Clone();
    }
}
