namespace MpiPipeline.RankTests;

/// <summary>
/// Bad option values, bad MPIPIPE_* values and output paths that cannot be written are reported once, by rank 0,
/// before any training: the job stops within seconds, with no epoch line and no results. The unwritable paths put a
/// file where a folder is expected, which even root cannot write through.
/// </summary>
public sealed class UpFrontCheckTests : RankFixture
{
    private static readonly string[] Small =
    [
        "--model", "mlp", "--train-samples", "640", "--test-samples", "100", "--batch", "64", "--epochs", "1",
    ];

    public static IEnumerable<TestCaseData> BadValues()
    {
        (string Name, string[] Args, (string, string)[] Environment, string Message)[] cases =
        [
            ("lr-above-float", ["--lr", "1e39"], [], "rank 0: --lr must be a positive number at most 3.40282347E+38"),
            ("threads-0", ["--threads", "0"], [], "rank 0: --threads must be >= 1 (got 0)"),
            ("momentum-nan", ["--momentum", "NaN"], [], "rank 0: --momentum must be in [0, 1) (got NaN)"),
            ("weight-decay-negative", ["--weight-decay", "-1"], [], "rank 0: --weight-decay must be a number >= 0 (got -1)"),
            ("weight-decay-nan", ["--weight-decay", "NaN"], [], "rank 0: --weight-decay must be a number >= 0 (got NaN)"),
            ("local-ranks", [], [("MPIPIPE_LOCAL_RANKS", "x")], "rank 0: MPIPIPE_LOCAL_RANKS='x' is not a positive integer"),
            ("torch-bridge", [], [("MPIPIPE_TORCH_BRIDGE", "/nonexistent/libmpp_bridge.so")], "rank 0: MPIPIPE_TORCH_BRIDGE is set to '/nonexistent/libmpp_bridge.so', which does not exist"),
            ("torch-threads", ["--threads", "1"], [("MPIPIPE_TORCH_THREADS", "many")], "rank 0: MPIPIPE_TORCH_THREADS='many' is not a positive integer"),
            ("stall-seconds", [], [("MPIPIPE_STALL_ABORT_SECONDS", "-1")], "rank 0: MPIPIPE_STALL_ABORT_SECONDS='-1' is not a number of seconds"),
            ("output-under-a-file", ["--output", "FILE/run.json"], [], "rank 0: --output FILE/run.json: cannot be written"),
            ("parameters-under-a-file", ["--save-parameters", "FILE/p.bin"], [], "rank 0: --save-parameters FILE/p.bin: cannot be written"),
            ("trace-under-a-file", ["--algo", "pipeline", "--trace", "FILE/t.json"], [], "rank 0: --trace FILE/t.json: cannot be written"),
            ("output-in-proc", ["--output", "/proc/mpipipe-none/run.json"], [], "rank 0: --output /proc/mpipipe-none/run.json: cannot be written"),
        ];
        return from flavor in MpiFlavor.All
               from c in cases
               select new TestCaseData(flavor, c.Args, c.Environment, c.Message).SetArgDisplayNames(flavor.Name, c.Name);
    }

    [TestCaseSource(nameof(BadValues))]
    public void IsReportedOnceByRankZeroBeforeAnyTraining(MpiFlavor flavor, string[] args, (string, string)[] environment, string message)
    {
        var file = NewStem("plain-file");
        File.WriteAllText(file, "a file where a folder is expected");
        var output = NewStem("never") + ".json";
        string[] expanded = [.. args.Select(a => a.Replace("FILE", file))];
        string[] outputArgs = expanded.Contains("--output") ? [] : ["--output", output];
        string[] threadArgs = expanded.Contains("--threads") ? [] : ["--threads", "1"];

        var result = MpiLauncher.Launch(flavor, 2, MpiLauncher.Mpipipe, ["train", .. Small, .. threadArgs, .. expanded, .. outputArgs], Prompt * 3, environment);

        AssertStoppedByBadInput(result, Prompt, output);
        Assert.That(result.ExitCode, Is.EqualTo(1), result.ToString());
        Assert.That(MpiLauncher.Count(result.Output, message.Replace("FILE", file)), Is.EqualTo(1), result.ToString());
        Assert.That(result.Output, Does.Not.Contain("epoch 1"), "reported before any training: " + result);
    }

    /// <summary>An MPI library override that cannot be loaded is found before MPI starts, on every rank: rank 0 alone says so.</summary>
    [TestCaseSource(nameof(Flavors))]
    public void BadMpiLibraryOverrideIsReportedOnceByRankZero(MpiFlavor flavor)
    {
        var result = MpiLauncher.Launch(flavor, 3, MpiLauncher.Mpipipe, ["info"], Prompt * 3, [("MPIPIPE_MPI_LIB", "/nonexistent/libmpi-missing.so")]);

        AssertFailedWithin(result, Prompt);
        Assert.That(MpiLauncher.Count(result.Output, "MPIPIPE_MPI_LIB is set to '/nonexistent/libmpi-missing.so'"), Is.EqualTo(1), result.ToString());
        Assert.That(result.Output, Does.Contain("rank 0: MPIPIPE_MPI_LIB is set to"), result.ToString());
    }

    /// <summary>Every output's missing folder is created, the trace's included (it was refused before).</summary>
    [Test]
    public void MissingFoldersAreCreatedForEveryOutput()
    {
        var root = NewStem("new-folders");
        var result = MpiLauncher.Launch(MpiFlavor.Mpich, 2, MpiLauncher.Mpipipe,
            ["train", .. Small, "--threads", "1", "--algo", "pipeline", "--max-steps", "3", "--output", Path.Combine(root, "a", "run.json"),
                "--save-parameters", Path.Combine(root, "b", "p.bin"), "--trace", Path.Combine(root, "c", "t.json")], Limit);

        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        foreach (var path in new[] { "a/run.json", "b/p.bin", "c/t.json" })
        {
            Assert.That(File.Exists(Path.Combine(root, path)), Is.True, path);
        }

        Assert.That(Directory.GetFiles(root, "*.tmp", SearchOption.AllDirectories), Is.Empty, "no temporary file left");
    }
}
