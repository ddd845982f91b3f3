namespace MpiPipeline.RankTests;

/// <summary>
/// <c>--model torchscript:FILE</c> under a real mpiexec: the scripted cnn of tests/fixtures/torchscript trains with
/// psgd on 2 ranks under each MPI, and, cut into two pipeline stages at its nn.Sequential's children, ends where psgd
/// ends; a file that cannot be used stops every rank with one message.
/// </summary>
public sealed class TorchScriptTests : RankFixture
{
    private const int CnnParameters = 206_922;

    /// <summary>512 samples, batch 64, 2 epochs: 16 steps; one thread per rank.</summary>
    private static readonly string[] Small =
    [
        .. FashionMnistPrefix.Samples(512, 200), "--batch", "64", "--epochs", "2", "--threads", "1",
        "--lr", "0.05", "--momentum", "0.9",
    ];

    private static string Fixture(string name) => Path.Combine(MpiLauncher.Bin, "Fixtures", "torchscript", name);

    /// <summary>
    /// psgd trains the module (the second epoch's loss below the first's, both below a guess's ln 10), the results and
    /// the run header name it; under MPICH the same 16 steps pipelined over 2 stages (1 replica) reach the same
    /// parameters, which only holds if each stage's flat buffer is its slice of the whole module's.
    /// </summary>
    [TestCaseSource(nameof(Flavors))]
    public void PsgdTrainsTheScriptedCnn(MpiFlavor flavor)
    {
        var model = "torchscript:" + Fixture("cnn.pt");
        var psgd = Train(flavor, 2, "psgd", ["--model", model, "--algo", "psgd", .. Small]);

        Assert.That(psgd.Json.GetProperty("model").GetString(), Is.EqualTo(model));
        Assert.That(psgd.Output, Does.Contain($"train: psgd, model {model} ({CnnParameters:N0} parameters)"));
        Assert.That(psgd.Parameters, Has.Length.EqualTo(CnnParameters));
        var losses = psgd.Json.GetProperty("epochs").EnumerateArray().Select(e => e.GetProperty("trainLoss").GetDouble()).ToArray();
        Assert.That(losses, Has.Length.EqualTo(2));
        Assert.That(losses[0], Is.LessThan(Math.Log(10)), "the first epoch already learns");
        Assert.That(losses[1], Is.LessThan(losses[0] - 0.2), "the loss falls: " + string.Join(", ", losses));

        if (flavor == MpiFlavor.Mpich)
        {
            var pipeline = Train(flavor, 2, "pipeline", ["--model", model, "--algo", "pipeline", "--stages", "2", "--micro-batches", "2", .. Small]);
            var cuts = pipeline.Json.GetProperty("pipeline").GetProperty("parametersPerStage").EnumerateArray().Select(p => p.GetInt64()).ToArray();
            Assert.That(cuts.Sum(), Is.EqualTo(CnnParameters));
            Assert.That(cuts, Has.All.GreaterThan(0), "two stages of the 10 children");
            var difference = psgd.Parameters.Zip(pipeline.Parameters, (a, b) => Math.Abs(a - b)).Max();
            Assert.That(difference, Is.LessThan(1e-4), "pipelined and data-parallel training of the same module on the same samples");
        }
    }

    public static IEnumerable<TestCaseData> BadModels()
    {
        yield return Case(MpiFlavor.Mpich, "missing", "no-such.pt", [], "the TorchScript file FIXTURE/no-such.pt does not exist");
        yield return Case(MpiFlavor.OpenMpi, "torch.save file", "not-script.pt", [], "FIXTURE/not-script.pt is not a TorchScript module");
        yield return Case(MpiFlavor.Mpich, "not a Sequential, 2 stages", "bn-net.pt", ["--algo", "pipeline", "--stages", "2"],
            "--stages 2: the TorchScript module in FIXTURE/bn-net.pt (BnNet) is not an nn.Sequential at its top level");

        static TestCaseData Case(MpiFlavor flavor, string name, string file, string[] args, string message) =>
            new TestCaseData(flavor, file, args, message).SetArgDisplayNames(flavor.Name, name);
    }

    /// <summary>
    /// One clear message, from rank 0, every rank exits non-zero promptly, no results file. Promptly: within twice
    /// <see cref="RankFixture.Prompt"/>, as each of these loads libtorch (a few seconds on a busy machine) before it can
    /// look at the file.
    /// </summary>
    [TestCaseSource(nameof(BadModels))]
    public void BadModelFileIsReportedOnceAndEveryRankExits(MpiFlavor flavor, string file, string[] args, string message)
    {
        var output = NewStem("bad") + ".json";
        var result = MpiLauncher.Launch(flavor, 2, MpiLauncher.Mpipipe,
            ["train", "--model", "torchscript:" + Fixture(file), .. Small, "--max-steps", "2", .. args, "--output", output], Prompt * 6);
        AssertStoppedByBadInput(result, Prompt * 2, output);
        Assert.That(result.Output, Does.Contain(message.Replace("FIXTURE", Path.GetDirectoryName(Fixture(file)))), result.ToString());
        Assert.That(MpiLauncher.Count(result.Output, "rank 0: "), Is.EqualTo(1), "reported once, by rank 0: " + result);
    }
}
