using System.Text.Json;
using MpiPipeline.Data;
using MpiPipeline.Dicod;

namespace MpiPipeline.RankTests;

/// <summary>
/// <c>mpipipe dicod</c> under a real mpiexec (MPICH and Open MPI, 2 and 4 ranks). One run per case checks several
/// things at once: DICOD's objective equals the one-rank greedy CD solution's, every rank's beta equals beta
/// recomputed from the gathered Z (a lost or doubled border message would show), border messages did cross, and the
/// run ends although one segment has no activation at all (the signal's first quarter is silent: at 4 ranks, rank 0
/// never updates and waits from the start). Bad arguments are usage errors printed once by rank 0.
/// </summary>
public sealed class DicodTests : RankFixture
{
    // K = 3 atoms of P = 2 x L = 12, T = 4000: 3989 activations, 997 per rank at n = 4 (2L - 1 = 23).
    private const int Atoms = 3, Channels = 2, AtomLength = 12, Length = 4000, Seed = 5;

    private string? signalPath;
    private string? dictionaryPath;
    private JsonElement? reference;

    public static IEnumerable<TestCaseData> Cases() => FlavorsAndRanks(2, 4);

    [TestCaseSource(nameof(Cases))]
    public void DicodReachesTheOneRankSolutionWithConsistentBeta(MpiFlavor flavor, int ranks)
    {
        var expected = Reference();
        var path = NewStem($"{flavor.Name}-dicod-n{ranks}") + ".json";
        var result = MpiLauncher.Launch(flavor, ranks, MpiLauncher.Mpipipe, ["dicod", .. ProblemArgs(), "--output", path], Limit);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var run = document.RootElement;

        Assert.That(run.GetProperty("ranks").GetInt32(), Is.EqualTo(ranks));
        Assert.That(run.GetProperty("converged").GetBoolean(), Is.True, result.ToString());
        var objective = run.GetProperty("objective").GetDouble();
        var target = expected.GetProperty("objective").GetDouble();
        Assert.That(objective, Is.EqualTo(target).Within(1e-9 * target), "DICOD's objective = greedy CD's on one rank");
        Assert.That(run.GetProperty("nonZeros").GetInt32(), Is.EqualTo(expected.GetProperty("nonZeros").GetInt32()));

        var deviation = run.GetProperty("betaMaxDeviation").GetDouble();
        var scale = run.GetProperty("betaScale").GetDouble();
        Assert.That(scale, Is.GreaterThan(1.0));
        Assert.That(deviation, Is.LessThan(1e-10 * scale), "every rank's beta = beta of the gathered Z");

        var messages = run.GetProperty("messagesPerRank").EnumerateArray().Sum(m => m.GetInt64());
        Assert.That(messages, Is.GreaterThan(0), "updates near the borders went to the neighbours");
        var updates = run.GetProperty("updatesPerRank").EnumerateArray().Select(u => u.GetInt64()).ToList();
        Assert.That(updates, Has.Count.EqualTo(ranks));
        Assert.That(updates.Sum(), Is.EqualTo(run.GetProperty("updates").GetInt64()));
        if (ranks == 4)
        {
            Assert.That(updates[0], Is.EqualTo(0), "rank 0's segment is silent: nothing to update there");
        }

        Assert.That(updates.Skip(1), Has.All.GreaterThan(0));
        Assert.That(result.Output, Does.Contain("termination after"), result.ToString());
    }

    public static IEnumerable<TestCaseData> BadArguments()
    {
        foreach (var flavor in MpiFlavor.All)
        {
            yield return new TestCaseData(flavor, new[] { "--lambda", "-1" }, "--lambda -1: lambda must be a finite number >= 0")
                .SetArgDisplayNames(flavor.Name, "lambda < 0");
            yield return new TestCaseData(flavor, new[] { "--length", "40", "--atom-length", "16" }, "T/W < 2L - 1: 2 ranks cut the 25 activations")
                .SetArgDisplayNames(flavor.Name, "T over W < 2L - 1");
        }
    }

    /// <summary>A usage error: one message from rank 0, exit 2 on every rank within seconds, no results file.</summary>
    [TestCaseSource(nameof(BadArguments))]
    public void BadArgumentsAreAUsageErrorFromRankZero(MpiFlavor flavor, string[] args, string message)
    {
        var output = NewStem("bad") + ".json";
        var result = MpiLauncher.Launch(flavor, 2, MpiLauncher.Mpipipe, ["dicod", .. args, "--output", output], Prompt * 6);
        AssertStoppedByBadInput(result, TimeSpan.FromSeconds(20), output);
        Assert.That(result.ExitCode, Is.EqualTo(2), result.ToString());
        Assert.That(MpiLauncher.Count(result.Output, message), Is.EqualTo(1), "printed once: " + result);
    }

    private string[] ProblemArgs()
    {
        WriteProblemFiles();
        return ["--signal", signalPath!, "--dictionary", dictionaryPath!, "--lambda", "0.5", "--tol", "1e-9"];
    }

    /// <summary>
    /// The synthetic problem's atoms and signal as .npy files, the signal silent on its first quarter and 2L beyond
    /// (no activation of the solution can reach rank 0's segment at 4 ranks).
    /// </summary>
    private void WriteProblemFiles()
    {
        if (signalPath is not null)
        {
            return;
        }

        var d = SyntheticCsc.Dictionary(Atoms, Channels, AtomLength, Seed);
        var (x, _) = SyntheticCsc.Signal(d, Atoms, Channels, AtomLength, Length, density: 0.03, noise: 0.1, Seed);
        var silent = ((Length - AtomLength + 1) / 4) + (2 * AtomLength);
        for (var p = 0; p < Channels; p++)
        {
            Array.Clear(x, p * Length, silent);
        }

        signalPath = Path.Combine(WorkDirectory, "signal.npy");
        dictionaryPath = Path.Combine(WorkDirectory, "atoms.npy");
        File.WriteAllBytes(signalPath, NpyFile.Encode([Channels, Length], x));
        File.WriteAllBytes(dictionaryPath, NpyFile.Encode([Atoms, Channels, AtomLength], d));
    }

    /// <summary>Greedy CD on one process (no launcher), once per fixture.</summary>
    private JsonElement Reference()
    {
        if (reference is { } known)
        {
            return known;
        }

        var path = NewStem("greedy") + ".json";
        var result = MpiLauncher.RunMpipipe(["dicod", .. ProblemArgs(), "--solver", "greedy", "--output", path], Limit);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        reference = document.RootElement.Clone();
        return reference.Value;
    }
}
