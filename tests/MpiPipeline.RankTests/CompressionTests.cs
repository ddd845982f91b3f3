using System.Text.Json;

namespace MpiPipeline.RankTests;

/// <summary>
/// --compress under a real mpiexec: every rank decodes the same average (replicas bitwise identical), through the
/// overlapped per-bucket exchange (the default) and the whole-buffer one (--no-overlap); ECQ with 2^15 levels in two
/// buckets trains as uncompressed PSGD does within a stated tolerance; top-k sends exactly its k pairs per bucket; the
/// pipeline's replicas average through a compressor; the results report the bytes; bad values are one usage error
/// from rank 0. One launch checks several things: n = 2 covers the whole-buffer path and the per-bucket byte count,
/// n = 4 the overlapped ECQ and the pipeline.
/// </summary>
public sealed class CompressionTests : RankFixture
{
    private static readonly string[] Small =
    [
        "--model", "mlp", "--train-samples", "1536", "--test-samples", "300", "--threads", "1", "--lr", "0.1", "--momentum", "0.9",
        "--max-steps", "20", "--batch", "64",
    ];

    private static readonly string[] Psgd = [.. Small, "--algo", "psgd"];

    /// <summary>The MLP 784-256-10: 203,530 parameters.</summary>
    private const long Coordinates = 203_530;

    /// <summary>--bucket-mb 0.2 (52,428 floats) cuts the MLP into two buckets, backward's order: [b1, W2, b2] (2,826
    /// values) and W1 (200,704) alone.</summary>
    private static readonly string[] TwoBuckets = ["--bucket-mb", "0.2"];

    private static readonly long[] BucketLengths = [2_826, 200_704];

    /// <summary>
    /// Relative to the largest parameter, after 20 steps (lr 0.1, momentum 0.9). Q_s with s = 2^15 moves a coordinate
    /// by up to ||u_b|| / s, the same for small coordinates as for large ones, so it perturbs more than fp16's relative
    /// rounding: measured 8.1e-3 (n = 2 and 4, both MPIs; fp16: 7.5e-4; s = 2^24: 1.2e-6; s = 4: an order more).
    /// </summary>
    private const double FineTolerance = 0.03;

    /// <summary>Pipeline 2 x 2 with topk:1 against PSGD on 4 ranks, relative to the largest parameter after 20 steps: the
    /// same mean gradient summed in another order (decoded payloads in rank order, then 1/n, against an Allreduce).</summary>
    private const double PipelineTolerance = 1e-4;

    [TestCaseSource(nameof(FlavorsAndRanks), new object[] { new[] { 2, 4 } })]
    public void EveryRankDecodesTheSameAverageAndFineEcqMatchesPsgd(MpiFlavor flavor, int ranks)
    {
        var dense = Train(flavor, ranks, "dense", [.. Psgd, "--no-overlap"]);
        var scale = dense.Parameters.Max(Math.Abs);
        Assert.That(scale, Is.GreaterThan(0.01), "real parameters");
        AssertReported(dense.Json, "none", ratio: r => r == 1, bits: b => b == 32);
        if (ranks == 2)
        {
            // The whole-buffer exchange after backward (--no-overlap): QSGD at s = 4, and top-k overlapped in two buckets.
            var coarse = Train(flavor, ranks, "qsgd4", [.. Psgd, "--compress", "qsgd:4", "--no-overlap"]);
            var sparse = Train(flavor, ranks, "topk", [.. Psgd, "--compress", "topk:0.05", .. TwoBuckets]);
            AssertSameEverywhere(coarse, overlapped: false);
            AssertSameEverywhere(sparse, overlapped: true);
            // s = 4 with l2 scaling: most levels 0, under a bit per coordinate with the scales and the size word.
            AssertReported(coarse.Json, "qsgd:4,512", ratio: r => r > 32, bits: b => b < 1);
            Assert.That(coarse.Output, Does.Contain("gradients compressed with qsgd:4,512: "), coarse.Output);
            Assert.That(coarse.Output, Does.Contain("whole buffer after backward"), coarse.Output);
            Assert.That(MaxDifference(coarse.Parameters, dense.Parameters) / scale, Is.GreaterThan(FineTolerance / 3),
                "s = 4 perturbs the run (more than s = 2^15 does, below)");
            // Top-k per bucket: exactly k = ceil(0.05 n_b) (index, fp32) pairs and a size word per bucket and step.
            var kept = BucketLengths.Sum(n => (long)Math.Ceiling(0.05 * n));
            var topkBits = 8.0 * ((8 * kept) + (4 * BucketLengths.Length)) / Coordinates;
            AssertReported(sparse.Json, "topk:0.05", ratio: r => Math.Abs(r - (32 / topkBits)) < 1e-9, bits: b => Math.Abs(b - topkBits) < 1e-9);
            Assert.That(sparse.Json.GetProperty("finalTestAccuracy").GetDouble(), Is.GreaterThan(0.5), "top-k with error feedback learns");
            Assert.That(sparse.Output, Does.Contain("per bucket (2) overlapped with backward"), sparse.Output);
            var bits = double.Parse(coarse.Json.GetProperty("options").GetProperty("bitsPerCoordinate").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
            TestContext.Out.WriteLine($"{flavor.Name} n={ranks}: qsgd:4 {bits:F3} bits/coordinate, {bits * Coordinates / 8:F0} bytes per step per rank " +
                $"(fp32: {4 * Coordinates}); qsgd:4 max relative difference to PSGD {MaxDifference(coarse.Parameters, dense.Parameters) / scale:E2}");
            return;
        }

        // n = 4: ECQ with 2^15 levels overlapped with backward in two buckets, against dense PSGD.
        var fine = Train(flavor, ranks, "ecq-fine", [.. Psgd, "--compress", "ecq:32768", .. TwoBuckets]);
        AssertSameEverywhere(fine, overlapped: true);
        Assert.That(MaxDifference(fine.Parameters, dense.Parameters) / scale, Is.LessThanOrEqualTo(FineTolerance));
        AssertReported(fine.Json, "ecq:32768,512,1,1", ratio: r => r is > 1 and < 4, bits: b => b is > 8 and < 32);
        TestContext.Out.WriteLine($"{flavor.Name} n={ranks}: ecq:32768 in 2 buckets max relative difference to PSGD {MaxDifference(fine.Parameters, dense.Parameters) / scale:E2}");

        // The pipeline's replica averaging through a compressor (overlapped, one bucket per stage): S = 2 stages x D = 2
        // replicas, topk:1 (every coordinate sent, the residual stays 0) is the dense PSGD run on 4 ranks up to the
        // order of the sums.
        var pipeline = Train(flavor, 4, "pipeline-topk", [.. Small, "--algo", "pipeline", "--stages", "2", "--data-parallel", "2",
            "--micro-batches", "2", "--compress", "topk:1"]);
        Assert.That(pipeline.Json.GetProperty("finalReplicaSpread").GetDouble(), Is.EqualTo(0), "the replicas of each stage decode the same average");
        AssertReported(pipeline.Json, "topk:1", ratio: r => r is > 0.49 and < 0.5, bits: b => b is > 64 and < 64.01);
        Assert.That(pipeline.Output, Does.Contain("gradients compressed with topk:1: "), pipeline.Output);
        Assert.That(MaxDifference(pipeline.Parameters, dense.Parameters) / scale, Is.LessThanOrEqualTo(PipelineTolerance));
        TestContext.Out.WriteLine($"{flavor.Name}: pipeline 2x2 topk:1 max relative difference to PSGD n=4 {MaxDifference(pipeline.Parameters, dense.Parameters) / scale:E2}");
    }

    private static void AssertSameEverywhere(TrainRun run, bool overlapped)
    {
        Assert.That(run.Json.GetProperty("finalReplicaSpread").GetDouble(), Is.EqualTo(0), "every rank holds bitwise the same parameters");
        Assert.That(run.Json.GetProperty("totals").GetProperty("communicationRounds").GetInt64(), Is.EqualTo(20));
        var options = run.Json.GetProperty("options");
        Assert.That(options.GetProperty("overlap").GetString(), Is.EqualTo(overlapped ? "true" : "false"));
        Assert.That(options.GetProperty("buckets").GetString(), Is.EqualTo(overlapped ? $"{BucketLengths.Length}" : ""));
    }

    private static void AssertReported(JsonElement json, string spec, Func<double, bool> ratio, Func<double, bool> bits)
    {
        var options = json.GetProperty("options");
        Assert.That(options.GetProperty("compress").GetString(), Is.EqualTo(spec));
        var r = double.Parse(options.GetProperty("compressionRatio").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        var b = double.Parse(options.GetProperty("bitsPerCoordinate").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(ratio(r), Is.True, $"{spec}: compression ratio {r}");
        Assert.That(bits(b), Is.True, $"{spec}: bits per coordinate {b}");
        Assert.That(r * b, Is.EqualTo(32).Within(1e-9), "ratio and bits describe the same bytes");
    }

    public static IEnumerable<TestCaseData> BadValues()
    {
        foreach (var flavor in MpiFlavor.All)
        {
            yield return Case(flavor, "ecq:0", ["--algo", "psgd", "--compress", "ecq:0"], "--compress ecq:S[,d,alpha,beta]: S (levels) must be a whole number in [1, 16777216] (got '0')");
            yield return Case(flavor, "unknown", ["--algo", "psgd", "--compress", "zip:3"], "unknown --compress 'zip:3'; known: none");
            yield return Case(flavor, "topk:2", ["--algo", "psgd", "--compress", "topk:2"], "--compress topk:R: R (the fraction kept) must be in (0, 1] (got '2')");
            yield return Case(flavor, "local-sgd", ["--compress", "ecq:4", "--algo", "local-sgd"], "--compress applies to --algo psgd, pipeline only (got --algo local-sgd)");
        }

        static TestCaseData Case(MpiFlavor flavor, string name, string[] args, string message) =>
            new TestCaseData(flavor, args, message).SetArgDisplayNames(flavor.Name, name);
    }

    [TestCaseSource(nameof(BadValues))]
    public void BadValuesAreOneUsageErrorFromRankZero(MpiFlavor flavor, string[] args, string message)
    {
        var output = NewStem("bad") + ".json";
        var result = MpiLauncher.Launch(flavor, 2, MpiLauncher.Mpipipe, ["train", .. Small, .. args, "--output", output], TimeSpan.FromSeconds(60));
        AssertStoppedByBadInput(result, TimeSpan.FromSeconds(15), output);
        Assert.That(MpiLauncher.Count(result.Output, message), Is.EqualTo(1), "reported once: " + result);
        // A bad value, or --compress where models are averaged, fails parsing before any training: a usage error like
        // an unknown --exchange.
        Assert.That(result.ExitCode, Is.EqualTo(2), "a usage error: " + result);
    }
}
