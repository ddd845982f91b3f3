using System.Text.Json;
using System.Text.RegularExpressions;

namespace MpiPipeline.RankTests;

/// <summary>
/// The divergence guard through real jobs: a learning rate far too high stops every rank at the step where the loss
/// or gradient first is not finite, with one message, exit status 4 and the results marked diverged; a non-finite
/// value seen by one rank alone (the tests' hook MPIPIPE_TEST_NONFINITE_AT) stops, or with --on-nonfinite skip-step
/// skips, that step on every rank.
/// </summary>
public sealed class DivergenceTests : RankFixture
{
    private const int DivergedExit = 4;
    private const string Hook = "MPIPIPE_TEST_NONFINITE_AT";

    private static readonly string[] Small =
    [
        "--model", "mlp", .. FashionMnistPrefix.Samples(2000, 300), "--threads", "1", "--batch", "64", "--epochs", "1",
    ];

    public static IEnumerable<TestCaseData> TooHigh()
    {
        yield return new TestCaseData(MpiFlavor.Mpich, new[] { "--algo", "psgd" }).SetArgDisplayNames("mpich", "psgd");
        yield return new TestCaseData(MpiFlavor.OpenMpi, new[] { "--algo", "psgd" }).SetArgDisplayNames("openmpi", "psgd");
        yield return new TestCaseData(MpiFlavor.OpenMpi, new[] { "--algo", "local-sgd", "--tau", "4" }).SetArgDisplayNames("openmpi", "local-sgd");
        yield return new TestCaseData(MpiFlavor.Mpich, new[] { "--algo", "ri-sgd", "--tau", "4", "--redundancy", "2" }).SetArgDisplayNames("mpich", "ri-sgd");
        yield return new TestCaseData(MpiFlavor.Mpich, new[] { "--algo", "pipeline", "--stages", "2" }).SetArgDisplayNames("mpich", "pipeline");
        yield return new TestCaseData(MpiFlavor.OpenMpi, new[] { "--algo", "pipeline", "--stages", "2" }).SetArgDisplayNames("openmpi", "pipeline");
    }

    [TestCaseSource(nameof(TooHigh))]
    public void LearningRateFarTooHighStopsEveryRankWithOneMessage(MpiFlavor flavor, string[] algorithm)
    {
        var (result, json, parameters) = Run(flavor, "lr1e6", [.. algorithm, "--lr", "1e6"]);

        Assert.That(result.ExitCode, Is.EqualTo(DivergedExit), result.ToString());
        Assert.That(result.Elapsed, Is.LessThan(TimeSpan.FromSeconds(60)), result.ToString());
        Assert.That(MpiLauncher.Count(result.Output, "training diverged at step"), Is.EqualTo(1), "one message: " + result);
        var match = Regex.Match(result.Stderr, @"training diverged at step (\d+): the (loss|gradient norm) is (NaN|-?Infinity) on rank (\d+)");
        Assert.That(match.Success, Is.True, result.ToString());
        Assert.That(result.Stderr, Does.Contain("likely cause is a learning rate too high").And.Contain("--lr (got 1000000; e.g. --lr 100000)"));
        Assert.That(result.Output, Does.Not.Contain("final test accuracy"));

        var step = long.Parse(match.Groups[1].Value);
        Assert.That(json.GetProperty("status").GetString(), Is.EqualTo("diverged"));
        Assert.That(json.GetProperty("finalTestAccuracy").ValueKind, Is.EqualTo(JsonValueKind.Null), "no accuracy for a diverged run");
        var divergence = json.GetProperty("divergence");
        Assert.That(divergence.GetProperty("step").GetInt64(), Is.EqualTo(step));
        Assert.That(divergence.GetProperty("quantity").GetString(), Is.EqualTo(match.Groups[2].Value));
        Assert.That(divergence.GetProperty("rank").GetInt32(), Is.EqualTo(int.Parse(match.Groups[4].Value)));
        Assert.That(json.GetProperty("totals").GetProperty("steps").GetInt64(), Is.EqualTo(step), "no rank stepped past the diverged step");
        Assert.That(File.Exists(parameters), Is.False, "no parameters saved from a diverged run");
    }

    /// <summary>Rank 1 alone sees a NaN loss at step 3: rank 0, which saw nothing, stops there too and names rank 1.</summary>
    [TestCaseSource(nameof(Flavors))]
    public void ANonFiniteValueOnOneRankStopsEveryRank(MpiFlavor flavor)
    {
        var (result, json, _) = Run(flavor, "poison-stop", ["--algo", "psgd", "--lr", "0.05"], [(Hook, "1:3")]);

        Assert.That(result.ExitCode, Is.EqualTo(DivergedExit), result.ToString());
        Assert.That(MpiLauncher.Count(result.Output, "training diverged at step 3: the loss is NaN on rank 1"), Is.EqualTo(1), result.ToString());
        Assert.That(json.GetProperty("divergence").GetProperty("rank").GetInt32(), Is.EqualTo(1));
        Assert.That(json.GetProperty("totals").GetProperty("steps").GetInt64(), Is.EqualTo(3));
    }

    /// <summary>
    /// --on-nonfinite skip-step: rank 1 alone sees a NaN loss at step 3; the update is dropped on both ranks (the
    /// replicas stay identical, which they would not if rank 1 alone skipped), counted, and the run goes on to the end;
    /// it ends elsewhere than a run that took that update.
    /// </summary>
    [TestCaseSource(nameof(Flavors))]
    public void SkipStepDropsTheUpdateOnEveryRankAndCountsIt(MpiFlavor flavor)
    {
        string[] args = ["--algo", "psgd", "--lr", "0.05", "--max-steps", "8"];
        var (skipped, json, parameters) = Run(flavor, "poison-skip", [.. args, "--on-nonfinite", "skip-step"], [(Hook, "1:3")]);
        var (plain, _, plainParameters) = Run(flavor, "plain", args);

        Assert.That(skipped.ExitCode, Is.EqualTo(0), skipped.ToString());
        Assert.That(plain.ExitCode, Is.EqualTo(0), plain.ToString());
        Assert.That(json.GetProperty("status").GetString(), Is.EqualTo("completed"));
        Assert.That(json.GetProperty("skippedSteps").EnumerateArray().Select(e => e.GetInt64()), Is.EqualTo(new long[] { 3 }));
        Assert.That(json.GetProperty("finalReplicaSpread").GetDouble(), Is.EqualTo(0), "every rank dropped the same update");
        Assert.That(skipped.Output, Does.Contain("1 step(s) skipped for a non-finite loss or gradient (--on-nonfinite skip-step): steps 3"));
        Assert.That(json.GetProperty("finalTestAccuracy").GetDouble(), Is.GreaterThan(0.1));
        Assert.That(Floats(parameters), Is.Not.EqualTo(Floats(plainParameters)), "step 3's update was not taken");
    }

    /// <summary>--max-skipped-steps 1: the second non-finite step (on rank 0 this time) stops the run.</summary>
    [Test]
    public void SkipStepStopsAfterTheLimit()
    {
        var (result, json, _) = Run(MpiFlavor.Mpich, "poison-limit",
            ["--algo", "psgd", "--lr", "0.05", "--max-steps", "8", "--on-nonfinite", "skip-step", "--max-skipped-steps", "1"], [(Hook, "1:2,0:5")]);

        Assert.That(result.ExitCode, Is.EqualTo(DivergedExit), result.ToString());
        Assert.That(MpiLauncher.Count(result.Output, "training diverged at step 5: the loss is NaN on rank 0"), Is.EqualTo(1), result.ToString());
        Assert.That(result.Output, Does.Contain("1 earlier step(s) with non-finite values were skipped (--max-skipped-steps 1)"));
        Assert.That(json.GetProperty("skippedSteps").EnumerateArray().Select(e => e.GetInt64()), Is.EqualTo(new long[] { 2 }));
        Assert.That(json.GetProperty("divergence").GetProperty("skippedSteps").GetInt32(), Is.EqualTo(1));
    }

    /// <summary>compare shows a diverged run as diverged, not as an accuracy, and exits with the diverged status; the
    /// compressors it is given are rows of their own (PSGD with --compress); its non-i.i.d. part, which needs 3 ranks,
    /// left out.</summary>
    [Test]
    public void CompareShowsADivergedRunAsDiverged()
    {
        var directory = NewStem("compare");
        var result = MpiLauncher.Launch(MpiFlavor.Mpich, 2, MpiLauncher.Mpipipe,
            ["compare", .. Small, "--lr", "1e6", "--max-steps", "6", "--non-iid-seeds", "0", "--out", directory, "--compressors", "fp16"], Limit);

        Assert.That(result.ExitCode, Is.EqualTo(DivergedExit), result.ToString());
        var table = File.ReadAllLines(Path.Combine(directory, "compare.md")).Where(l => l.StartsWith("| PSGD", StringComparison.Ordinal) || l.StartsWith("| local", StringComparison.Ordinal) || l.StartsWith("| RI", StringComparison.Ordinal)).ToList();
        Assert.That(table, Has.Count.EqualTo(5));
        Assert.That(table[^1], Does.StartWith("| PSGD, --compress fp16 "), string.Join("\n", table));
        Assert.That(table, Has.All.Match(@"^\|[^|]+\|\s*diverged at step \d+ \((loss|gradient norm) (NaN|-?Infinity)\)\s*\|"), string.Join("\n", table));
        using var psgd = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "compare-psgd-tau1-q1.json")));
        Assert.That(psgd.RootElement.GetProperty("status").GetString(), Is.EqualTo("diverged"));
        using var fp16 = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "compare-psgd-compress-fp16.json")));
        Assert.That(fp16.RootElement.GetProperty("options").GetProperty("compress").GetString(), Is.EqualTo("fp16"));
    }

    private (LaunchResult Result, JsonElement Json, string Parameters) Run(MpiFlavor flavor, string name, string[] args,
        (string, string)[]? environment = null)
    {
        var stem = NewStem($"{flavor.Name}-{name}");
        var result = MpiLauncher.Launch(flavor, 2, MpiLauncher.Mpipipe,
            ["train", .. Small, .. args, "--output", stem + ".json", "--save-parameters", stem + ".bin"], Limit, environment);
        Assert.That(File.Exists(stem + ".json"), Is.True, "results written: " + result);
        using var json = JsonDocument.Parse(File.ReadAllText(stem + ".json"));
        return (result, json.RootElement.Clone(), stem + ".bin");
    }
}
