using System.Text.Json;

namespace MpiPipeline.RankTests;

/// <summary>
/// libtorch's threads per rank follow one order in every verb: <c>--threads</c> given, else MPIPIPE_TORCH_THREADS,
/// else the verb's own default (train: the node's share of the cores; bench bridge: 1). Checked through the programs
/// as a user starts them, with the variable set in their environment.
/// </summary>
public sealed class ThreadsTests : RankFixture
{
    private static readonly (string, string)[] ThreeThreads = [("MPIPIPE_TORCH_THREADS", "3")];

    [Test]
    public void BenchBridgeTakesTheVariableUnlessThreadsIsGiven()
    {
        string[] bench = ["bench", "bridge", "--model", "mlp", "--steps", "2", "--warmup", "0", "--batch", "16"];
        Assert.That(Header(MpiLauncher.Run("dotnet", [MpiLauncher.Mpipipe, .. bench], Limit, ThreeThreads)), Does.Contain("threads 3,"));
        Assert.That(Header(MpiLauncher.Run("dotnet", [MpiLauncher.Mpipipe, .. bench, "--threads", "2"], Limit, ThreeThreads)), Does.Contain("threads 2,"));
        Assert.That(Header(MpiLauncher.Run("dotnet", [MpiLauncher.Mpipipe, .. bench], Limit, [("MPIPIPE_TORCH_THREADS", "")])), Does.Contain("threads 1,"));
    }

    [Test]
    public void TrainTakesTheVariableUnlessThreadsIsGiven()
    {
        Assert.That(TrainThreads([]), Is.EqualTo("3"));
        Assert.That(TrainThreads(["--threads", "2"]), Is.EqualTo("2"));

        var bad = MpiLauncher.Run("dotnet", [MpiLauncher.Mpipipe, "train", "--algo", "single", "--max-steps", "1"], Limit,
            [("MPIPIPE_TORCH_THREADS", "many")]);
        AssertFailedWithin(bad, Limit);
        Assert.That(MpiLauncher.Count(bad.Output, "MPIPIPE_TORCH_THREADS='many' is not a positive integer"), Is.EqualTo(1), bad.ToString());
    }

    private string TrainThreads(string[] threads)
    {
        var output = NewStem("threads") + ".json";
        var result = MpiLauncher.Run("dotnet",
            [
                MpiLauncher.Mpipipe, "train", "--algo", "single", "--model", "mlp", "--max-steps", "2", "--batch", "16",
                .. FashionMnistPrefix.Samples(64, 32), .. threads, "--output", output,
            ],
            Limit, ThreeThreads);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        using var json = JsonDocument.Parse(File.ReadAllText(output));
        return json.RootElement.GetProperty("options").GetProperty("threadsPerRank").GetString()!;
    }

    private static string Header(LaunchResult result)
    {
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        return result.Output.Split('\n').First(l => l.StartsWith("# mpipipe bench bridge (C#)", StringComparison.Ordinal));
    }
}
