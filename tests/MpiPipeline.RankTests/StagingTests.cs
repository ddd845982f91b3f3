namespace MpiPipeline.RankTests;

/// <summary>
/// Device-resident gradients through the staging path, on CPU stages with separate host mirrors
/// (MPIPIPE_FORCE_STAGING=1) under a real mpiexec: PSGD on 2 ranks staged bucket by bucket, and with the device memory
/// handed to MPI (--cuda-aware-mpi), trains exactly as the default (host memory, overlapped buckets), and the staged
/// run made one device-to-host and one host-to-device copy per bucket and step.
/// </summary>
public sealed class StagingTests : RankFixture
{
    /// <summary>The MLP (784-256-10) with 10 KB buckets: three buckets (see OverlapTests).</summary>
    private static readonly string[] Psgd =
    [
        "--algo", "psgd", "--model", "mlp", "--batch", "64", .. FashionMnistPrefix.Samples(1536, 300), "--threads", "1",
        "--lr", "0.1", "--momentum", "0.9", "--max-steps", "20", "--bucket-mb", "0.01",
    ];

    private static readonly (string, string)[] Forced = [("MPIPIPE_FORCE_STAGING", "1")];

    [TestCaseSource(nameof(Flavors))]
    public void StagedAndCudaAwareGradientsTrainExactlyAsHostGradients(MpiFlavor flavor)
    {
        var host = Train(flavor, 2, "host", Psgd);
        var staged = Train(flavor, 2, "staged", Psgd, environment: Forced);
        var direct = Train(flavor, 2, "cuda-aware", [.. Psgd, "--cuda-aware-mpi"], environment: Forced);

        Assert.That(host.Parameters.Max(Math.Abs), Is.GreaterThan(0.01), "real parameters");
        // Per element every path adds the same two numbers and multiplies by the same 1/2: bitwise equal.
        Assert.That(MaxDifference(staged.Parameters, host.Parameters), Is.EqualTo(0), "staged");
        Assert.That(MaxDifference(direct.Parameters, host.Parameters), Is.EqualTo(0), "cuda-aware");

        var options = host.Json.GetProperty("options");
        Assert.That(options.GetProperty("gradientStaging").GetString(), Is.EqualTo("none"));
        Assert.That(options.GetProperty("overlap").GetString(), Is.EqualTo("true"));

        options = staged.Json.GetProperty("options");
        Assert.That(options.GetProperty("gradientStaging").GetString(), Is.EqualTo("host"));
        Assert.That(options.GetProperty("overlap").GetString(), Is.EqualTo("false"), "the backward hook is for host gradients");
        Assert.That(options.GetProperty("stagingBuckets").GetString(), Is.EqualTo("3"));
        Assert.That(options.GetProperty("deviceToHostCopies").GetString(), Is.EqualTo("60"), "3 buckets x 20 steps");
        Assert.That(options.GetProperty("hostToDeviceCopies").GetString(), Is.EqualTo("60"));
        Assert.That(staged.Json.GetProperty("totals").GetProperty("communicationRounds").GetInt64(), Is.EqualTo(20));
        Assert.That(staged.Json.GetProperty("notes").EnumerateArray().Select(n => n.GetString()),
            Has.Some.StartWith("gradients staged through the host mirror in 3 bucket(s): 60 device->host and 60 host->device copies over 20 rounds"));

        options = direct.Json.GetProperty("options");
        Assert.That(options.GetProperty("gradientStaging").GetString(), Is.EqualTo("cuda-aware"));
        Assert.That(options.GetProperty("deviceToHostCopies").GetString(), Is.EqualTo("0"));
        Assert.That(options.GetProperty("hostToDeviceCopies").GetString(), Is.EqualTo("0"));
    }
}
