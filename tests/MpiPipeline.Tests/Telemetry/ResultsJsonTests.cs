using System.Text.Json;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Tests.Telemetry;

[TestFixture]
public sealed class ResultsJsonTests
{
    private string directory = null!;

    [SetUp]
    public void CreateDirectory() => directory = Directory.CreateTempSubdirectory("mpipipe-results-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(directory, recursive: true);

    internal static RunResult Sample() => new(
        Algorithm: "ri-sgd",
        Model: "cnn",
        Ranks: 4,
        Options: new Dictionary<string, string> { ["tau"] = "16", ["redundancy"] = "2", ["lr"] = "0.05" },
        Epochs:
        [
            new EpochRecord(1, 0.61, 0.78, 0.45, 0.84, 5120.5, 11.7, 234, 1_234_567, 1_645_000, 9.1, 2.2),
            new EpochRecord(2, 0.38, 0.86, double.NaN, 0.87, 5301.25, 11.3, 468, 2_469_134, 3_292_178, 8.9, 2.1),
        ],
        Totals: new RunTotals(468, 119_808, 468, 3_292_178, 2_469_134, 3_292_178, 18.0, 4.3, 0.5, 1.2, 23.0, 0.7),
        FinalTestAccuracy: 0.87,
        WallSeconds: 23.0,
        LossCurve: [new LossPoint(0, 0, 0.0, 2.30), new LossPoint(16, 1, 0.8, 1.10), new LossPoint(32, 2, 1.6, double.PositiveInfinity)],
        Notes: ["worker 2 stopped at step 300; chunks covered: 0, 1, 2, 3"]);

    [Test]
    public void PipelineFiguresRoundTrip()
    {
        var summary = new PipelineSummary("1f1b", 2, 1, 4, 16, "time", [1, 3], [0.001, 0.002, 0.0001, 0.0005], [0, 203_530], [2, 1], [2, 1],
            [0.0003, 0.0007], [0.0002, 0.0006], 0.012, 0.0065, 0.0058, 0.2, [0.4, 0.3], [0.002, 0.001], [200_704, 200_704]);
        var written = Sample() with { Algorithm = "pipeline", Pipeline = summary };
        var json = ResultsJson.Serialize(written);
        Assert.That(json, Does.Contain("\"peakActivationsPerStage\""));
        Assert.That(json, Does.Contain("\"efficiencyVsIdeal\""));
        var read = ResultsJson.Deserialize(json, "test");
        Assert.That(read.Pipeline, Is.Not.Null);
        Assert.That(read.Pipeline!.PeakActivationsPerStage, Is.EqualTo(new[] { 2, 1 }));
        Assert.That(read.Pipeline.EfficiencyVsIdeal, Is.EqualTo(0.0065 / 0.012).Within(1e-12));
        Assert.That(ResultsJson.Serialize(read), Is.EqualTo(json));
        Assert.That(ResultsJson.Deserialize(ResultsJson.Serialize(Sample()), "test").Pipeline, Is.Null, "absent for other algorithms");
    }

    [Test]
    public void RoundTripsThroughAFile()
    {
        var path = Path.Combine(directory, "nested", "run.json");
        var written = Sample();

        ResultsJson.Write(path, written);
        var read = ResultsJson.Read(path);

        Assert.That(read.Algorithm, Is.EqualTo("ri-sgd"));
        Assert.That(read.Options, Is.EquivalentTo(written.Options));
        Assert.That(read.Epochs, Is.EqualTo(written.Epochs), "records compare by value; NaN equals NaN in record equality");
        Assert.That(read.Totals, Is.EqualTo(written.Totals));
        Assert.That(read.LossCurve, Is.EqualTo(written.LossCurve));
        Assert.That(read.Notes, Is.EqualTo(written.Notes));
        Assert.That(ResultsJson.Serialize(read), Is.EqualTo(ResultsJson.Serialize(written)));
        Assert.That(Directory.GetFiles(Path.GetDirectoryName(path)!), Is.EqualTo(new[] { path }), "the temporary file is renamed, not left behind");
    }

    [Test]
    public void IsCamelCaseAndIndented()
    {
        var json = ResultsJson.Serialize(Sample());
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        Assert.That(root.GetProperty("finalTestAccuracy").GetDouble(), Is.EqualTo(0.87));
        Assert.That(root.GetProperty("epochs")[0].GetProperty("bytesSentPerRank").GetInt64(), Is.EqualTo(1_234_567));
        Assert.That(root.GetProperty("epochs")[0].GetProperty("mpiPayloadBytesPerRank").GetInt64(), Is.EqualTo(1_645_000));
        Assert.That(root.GetProperty("totals").GetProperty("mpiPayloadBytesPerRank").GetInt64(), Is.EqualTo(3_292_178));
        Assert.That(root.GetProperty("lossCurve")[1].GetProperty("communicationRounds").GetInt64(), Is.EqualTo(1));
        Assert.That(root.GetProperty("epochs")[1].GetProperty("testLoss").GetString(), Is.EqualTo("NaN"));
        Assert.That(json, Does.Contain("\n  \"algorithm\": \"ri-sgd\""));
    }

    [Test]
    public void OverwritesAnEarlierFile()
    {
        var path = Path.Combine(directory, "run.json");
        ResultsJson.Write(path, Sample() with { Algorithm = "psgd" });
        ResultsJson.Write(path, Sample());
        Assert.That(ResultsJson.Read(path).Algorithm, Is.EqualTo("ri-sgd"));
    }

    [Test]
    public void MissingOrBrokenFilesAreInputErrors()
    {
        var missing = Path.Combine(directory, "absent.json");
        Assert.That(Assert.Throws<InputException>(() => ResultsJson.Read(missing))!.Message, Does.Contain(missing));

        var broken = Path.Combine(directory, "broken.json");
        File.WriteAllText(broken, ResultsJson.Serialize(Sample())[..200]);
        Assert.That(Assert.Throws<InputException>(() => ResultsJson.Read(broken))!.Message, Does.Contain(broken).And.Contain("not a valid results file"));

        var incomplete = Path.Combine(directory, "incomplete.json");
        File.WriteAllText(incomplete, """{ "algorithm": "psgd", "model": "cnn" }""");
        Assert.That(Assert.Throws<InputException>(() => ResultsJson.Read(incomplete))!.Message, Does.Contain(incomplete));
    }
}
