using System.Text.Json;

namespace MpiPipeline.RankTests;

/// <summary>
/// The four reference runs of the training-loop redesign (4 ranks, MPICH), against the per-step training losses
/// recorded before it (Fixtures/reference-losses.json): a refactor of the loop, the engines or the exchange that
/// changes any number shows here. libtorch's kernels pick other instructions on other CPUs, and a cnn's float
/// trajectory then drifts chaotically (0.8% apart by step 38 between the two recorded machines, from 4e-6 at step 16),
/// so the fixture holds one recording per build machine: the run must match one of them to 1e-6 relative at every
/// step, and must when this CPU model has a recording; on a CPU without one only <see cref="OtherCpuTolerance"/> holds. The runs name today's exchange, so that a later change of the default does not move
/// them. Each run also checks its byte counters: the payload the exchange handed to MPI is the flat buffer per round,
/// and the ring estimate 2(n-1)/n of it.
/// </summary>
public sealed class ReferenceLossTests : RankFixture
{
    private static readonly JsonElement Reference = JsonDocument.Parse(
        File.ReadAllText(Path.Combine(MpiLauncher.Bin, "Fixtures", "reference-losses.json"))).RootElement.Clone();

    public static IEnumerable<TestCaseData> Runs() =>
        Reference.GetProperty("runs").EnumerateArray().Select(run => new TestCaseData(run.GetProperty("name").GetString()!)
            .SetArgDisplayNames(run.GetProperty("name").GetString()!));

    /// <summary>Relative distance to the recordings allowed on a CPU model none of them came from.</summary>
    private const double OtherCpuTolerance = 0.05;

    [TestCaseSource(nameof(Runs))]
    public void StepLossesMatchTheRecordedOnes(string name)
    {
        var reference = Reference.GetProperty("runs").EnumerateArray().Single(r => r.GetProperty("name").GetString() == name);
        var ranks = Reference.GetProperty("ranks").GetInt32();
        var output = NewStem($"reference-{name}") + ".json";
        string[] args =
        [
            "train", .. reference.GetProperty("args").EnumerateArray().Select(a => a.GetString()!),
            .. Reference.GetProperty("common").EnumerateArray().Select(a => a.GetString()!),
            "--exchange", "allreduce", "--data", FashionMnistPrefix.Location, "--output", output,
        ];
        var result = MpiLauncher.Launch(MpiFlavor.Mpich, ranks, MpiLauncher.Mpipipe, args, TimeSpan.FromSeconds(180));
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        using var json = JsonDocument.Parse(File.ReadAllText(output));
        var root = json.RootElement;
        var curve = root.GetProperty("lossCurve").EnumerateArray().ToArray();
        var recordings = reference.GetProperty("recordings").EnumerateArray()
            .Select(r => (Cpu: r.GetProperty("cpu").GetString()!, Losses: r.GetProperty("losses").EnumerateArray().Select(l => l.GetDouble()).ToArray()))
            .ToArray();
        var expected = recordings[0].Losses;
        var rounds = reference.GetProperty("rounds").EnumerateArray().Select(r => r.GetInt64()).ToArray();
        Assert.That(curve.Select(p => p.GetProperty("step").GetInt64()), Is.EqualTo(Enumerable.Range(1, expected.Length).Select(i => (long)i)));
        Assert.That(curve.Select(p => p.GetProperty("communicationRounds").GetInt64()), Is.EqualTo(rounds));
        var losses = curve.Select(p => p.GetProperty("loss").GetDouble()).ToArray();
        var cpu = CpuModel();
        var distances = recordings.Select(r => MaxRelativeDistance(losses, r.Losses)).ToArray();
        var report = string.Join("; ", recordings.Select((r, i) => $"{r.Cpu}: {distances[i]:E2}")) + $" (this CPU: {cpu})";
        if (distances.Min() > 1e-6)
        {
            Assert.That(recordings.Any(r => r.Cpu == cpu), Is.False, $"this CPU has a recording, so one must match to 1e-6: {report}");
            Assert.That(distances.Min(), Is.LessThanOrEqualTo(OtherCpuTolerance), $"no recording from this CPU, and none within {OtherCpuTolerance}: {report}");
            TestContext.Out.WriteLine($"{name}: no recording from this CPU; within {OtherCpuTolerance} only: {report}");
        }

        Assert.That(root.GetProperty("options").GetProperty("exchange").GetString(), Is.EqualTo("allreduce"));
        var totals = root.GetProperty("totals");
        var payload = totals.GetProperty("allreducePayloadBytesPerRank").GetInt64();
        if (!name.StartsWith("pipeline", StringComparison.Ordinal))
        {
            // Every data-parallel round hands the whole flat buffer (gradients or parameters) to MPI.
            var parameters = ParameterCount(root);
            Assert.That(payload, Is.EqualTo(totals.GetProperty("communicationRounds").GetInt64() * parameters * sizeof(float)));
            Assert.That(totals.GetProperty("mpiPayloadBytesPerRank").GetInt64(), Is.EqualTo(payload));
            Assert.That(totals.GetProperty("bytesSentPerRank").GetInt64(), Is.EqualTo(2L * (ranks - 1) * payload / ranks));
        }
        else
        {
            // D = 2 replicas: the ring estimate of a 2-rank Allreduce is its payload; the stages' messages come on top.
            Assert.That(totals.GetProperty("mpiPayloadBytesPerRank").GetInt64(), Is.EqualTo(totals.GetProperty("bytesSentPerRank").GetInt64()));
            Assert.That(totals.GetProperty("mpiPayloadBytesPerRank").GetInt64(), Is.GreaterThan(payload / 2));
        }
    }

    private static double MaxRelativeDistance(double[] losses, double[] recorded) =>
        losses.Zip(recorded, (loss, r) => Math.Abs(loss - r) / Math.Abs(r)).Max();

    /// <summary>The CPU model as /proc/cpuinfo names it (the fixture's recordings are keyed by it).</summary>
    private static string CpuModel() =>
        File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";

    /// <summary>Parameters of the Fashion-MNIST mlp and cnn (weights and biases of each layer), counted independently of the program.</summary>
    private static long ParameterCount(JsonElement root) => root.GetProperty("model").GetString() switch
    {
        "mlp" => 784L * 256 + 256 + 256L * 10 + 10,
        "cnn" => (1L * 16 * 9 + 16) + (16L * 32 * 9 + 32) + (32L * 7 * 7 * 128 + 128) + (128L * 10 + 10),
        var other => throw new AssertionException($"no parameter count for {other}"),
    };
}
