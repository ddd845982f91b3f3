using MpiPipeline.Scaling;

namespace MpiPipeline.Tests.Scaling;

/// <summary>The fits recover known parameters from synthetic timings with noise; the model's formulas by hand.</summary>
[TestFixture]
public sealed class PerformanceModelTests
{
    private const double Alpha = 5e-6;           // 5 us
    private const double Beta = 1 / 10e9;        // 10 GB/s
    private static readonly long[] Sizes = [.. Enumerable.Range(0, 11).Select(k => 8L << (2 * k))]; // 8 B .. 8 MiB

    /// <summary>Multiplicative noise, uniform in [-amplitude, +amplitude], reproducible.</summary>
    private static Func<double> Noise(double amplitude, int seed)
    {
        var random = new Random(seed);
        return () => 1 + amplitude * (2 * random.NextDouble() - 1);
    }

    [TestCase(0.0, 1e-9)]
    [TestCase(0.05, 0.06)]
    [TestCase(0.10, 0.12)]
    public void RingAllreduceFitRecoversAlphaAndBeta(double noise, double tolerance)
    {
        var next = Noise(noise, seed: 7);
        var truth = new AlphaBeta(Alpha, Beta);
        var samples = (from n in new[] { 2, 4, 8 }
                       from s in Sizes
                       select new TimingSample(n, s, truth.RingAllreduce(n, s) * next())).ToList();
        var fit = AlphaBeta.FitRingAllreduce(samples);
        Assert.That(fit.Points, Is.EqualTo(33));
        Assert.That(fit.Model.Alpha, Is.EqualTo(Alpha).Within(tolerance * Alpha));
        Assert.That(fit.Model.Beta, Is.EqualTo(Beta).Within(tolerance * Beta));
        Assert.That(fit.Model.Bandwidth, Is.EqualTo(10e9).Within(tolerance * 1.1 * 10e9));
    }

    [TestCase(0.0, 1e-9)]
    [TestCase(0.05, 0.06)]
    public void PointToPointFitRecoversAlphaAndBeta(double noise, double tolerance)
    {
        var next = Noise(noise, seed: 11);
        var samples = Sizes.Select(s => new TimingSample(2, s, (Alpha + s * Beta) * next())).ToList();
        var fit = AlphaBeta.FitPointToPoint(samples).Model;
        Assert.That(fit.Alpha, Is.EqualTo(Alpha).Within(tolerance * Alpha));
        Assert.That(fit.Beta, Is.EqualTo(Beta).Within(tolerance * Beta));
    }

    [Test]
    public void CoefficientsStayNonNegative()
    {
        // Pure bandwidth timings with a dip at the small sizes: an unconstrained fit would give a negative latency.
        var samples = Sizes.Select(s => new TimingSample(2, s, s * Beta * (s < 1000 ? 0.5 : 1))).ToList();
        var fit = AlphaBeta.FitPointToPoint(samples).Model;
        Assert.That(fit.Alpha, Is.GreaterThanOrEqualTo(0));
        Assert.That(fit.Beta, Is.GreaterThan(0));
    }

    [Test]
    public void TheFitNeedsCommunication()
    {
        Assert.Throws<ArgumentException>(() => AlphaBeta.FitRingAllreduce([new TimingSample(1, 8, 1e-6), new TimingSample(2, 8, 1e-6)]));
    }

    [Test]
    public void LinearCostRecoversFixedAndPerSampleParts()
    {
        var next = Noise(0.02, seed: 3);
        var points = new[] { 8, 16, 32, 64, 128, 256 }.Select(b => ((double)b, (0.002 + b * 50e-6) * next())).ToList();
        var cost = LinearCost.Fit(points);
        Assert.That(cost.Fixed, Is.EqualTo(0.002).Within(0.0003));
        Assert.That(cost.PerSample, Is.EqualTo(50e-6).Within(2e-6));

        var single = LinearCost.Fit([(32, 0.0032), (32, 0.0032)]);
        Assert.That(single.Fixed, Is.EqualTo(0), "one batch size: no fixed part can be told apart");
        Assert.That(single.PerSample, Is.EqualTo(0.0001).Within(1e-12));
    }

    [Test]
    public void RingModelAndBandwidthBoundByHand()
    {
        var ab = new AlphaBeta(Alpha, Beta);
        const double s = 1_000_000;
        Assert.That(ab.RingAllreduce(1, s), Is.EqualTo(0));
        Assert.That(ab.RingAllreduce(4, s), Is.EqualTo(6 * Alpha + 1.5 * s * Beta).Within(1e-15));
        Assert.That(ab.AllreduceBandwidthBound(4, s), Is.EqualTo(1.5 * s / 10e9).Within(1e-15));
        Assert.That(ab.RingAllreduce(1024, s), Is.GreaterThan(ab.AllreduceBandwidthBound(1024, s)), "the ring pays latency on top of the bound");
        Assert.That(ab.AllreduceBandwidthBound(1 << 20, s), Is.LessThan(2 * s * Beta), "the bound approaches 2 S / B");
    }

    /// <summary>
    /// One link all ranks share (an emulated network): the 2(n-1) ring steps each put n messages of S/n on the one link,
    /// 2(n-1) alpha + 2(n-1) S beta. Measured on a loopback shaped to 1 Gbit (Open MPI, 2 MiB): 33.6 ms at 2 ranks and
    /// 101 ms at 4, i.e. 2 S / B and 6 S / B; the per-rank form fitted at 2 ranks would have said 50 ms at 4.
    /// </summary>
    [Test]
    public void OnASharedLinkTheRanksSplitTheBandwidth()
    {
        var link = new AlphaBeta(0, 1 / 125e6);
        const double s = 2 << 20;
        Assert.That(link.RingAllreduce(2, s, LinkTopology.Shared), Is.EqualTo(2 * s / 125e6).Within(1e-12));
        Assert.That(link.RingAllreduce(4, s, LinkTopology.Shared), Is.EqualTo(6 * s / 125e6).Within(1e-12));
        Assert.That(new AlphaBeta(Alpha, Beta).RingAllreduce(4, s, LinkTopology.Shared), Is.EqualTo(6 * Alpha + 6 * s * Beta).Within(1e-15));
        Assert.That(link.RingAllreduce(1, s, LinkTopology.Shared), Is.EqualTo(0));
    }

    [Test]
    public void ASharedLinkFittedAtTwoRanksPredictsFour()
    {
        var truth = new AlphaBeta(40e-6, 1 / 125e6);
        var atTwo = Sizes.Select(s => new TimingSample(2, s, truth.RingAllreduce(2, s, LinkTopology.Shared))).ToList();
        var shared = AlphaBeta.FitRingAllreduce(atTwo, LinkTopology.Shared).Model;
        Assert.That(shared.Alpha, Is.EqualTo(truth.Alpha).Within(1e-9));
        Assert.That(shared.Bandwidth, Is.EqualTo(125e6).Within(1e-3), "on the shared form beta is the link's, as ping-pong measures it");
        Assert.That(shared.RingAllreduce(4, 1e6, LinkTopology.Shared), Is.EqualTo(truth.RingAllreduce(4, 1e6, LinkTopology.Shared)).Within(1e-9));

        // The per-rank form absorbs the factor n = 2 into beta (half the link's bandwidth) and at 4 ranks predicts half.
        var perRank = AlphaBeta.FitRingAllreduce(atTwo).Model;
        Assert.That(perRank.Bandwidth, Is.EqualTo(62.5e6).Within(1e-3));
        var bandwidthTerm = truth.RingAllreduce(4, 8e6, LinkTopology.Shared) - 6 * truth.Alpha;
        Assert.That(perRank.RingAllreduce(4, 8e6) - 6 * perRank.Alpha, Is.EqualTo(bandwidthTerm / 2).Within(1e-9));
    }

    [Test]
    public void ASharedLinkModelIsValidatedSharedAndProjectedOnOwnLinks()
    {
        var link = new AlphaBeta(0, 1 / 125e6);
        var model = new PerformanceModel(link, link, new LinearCost(0.001, 0), new LinearCost(0, 0), 1_000_000, LinkTopology.Shared);
        Assert.That(model.Communication(4), Is.EqualTo(6e6 / 125e6).Within(1e-12), "validation against runs that shared the link");
        Assert.That(model.OnOwnLinks().Communication(4), Is.EqualTo(1.5e6 / 125e6).Within(1e-12), "a cluster with this link per node");
        Assert.That(model.WithNetwork(0, 125e6).Topology, Is.EqualTo(LinkTopology.PerRank), "an assumed network is a cluster's");
    }

    [Test]
    public void ProjectionsByHand()
    {
        // compute 1 ms + 0.1 ms per sample, other 0, S = 1 MB, alpha 5 us, 10 GB/s
        var model = new PerformanceModel(new AlphaBeta(Alpha, Beta), new AlphaBeta(Alpha, Beta), new LinearCost(0.001, 1e-4), new LinearCost(0, 0), 1_000_000);
        var weak = model.Project(ScalingMode.Weak, [16, 64], batch: 32, tau: 8, stages: 4, microBatches: 8, activationBytes: 0);
        var p = weak[0];
        var ar16 = 30 * Alpha + 2.0 * 15 / 16 * 1e6 * Beta;
        Assert.That(p.PerRankBatch, Is.EqualTo(32));
        Assert.That(p.ComputeSeconds, Is.EqualTo(0.0042).Within(1e-12));
        Assert.That(p.Psgd.CommunicationSeconds, Is.EqualTo(ar16).Within(1e-15));
        Assert.That(p.Psgd.StepSeconds, Is.EqualTo(0.0042 + ar16).Within(1e-12));
        Assert.That(p.Psgd.Efficiency, Is.EqualTo(0.0042 / (0.0042 + ar16)).Within(1e-12), "weak: T1 / T(n)");
        Assert.That(p.LocalSgd.CommunicationSeconds, Is.EqualTo(ar16 / 8).Within(1e-15));
        Assert.That(p.PipelineBubble, Is.EqualTo(3.0 / 11).Within(1e-12));
        // pipeline: 4 replicas of 4 stages, replica batch 128, m = 16; 11 slots of 0.1 ms x 16 / 4, 2 messages of 0 B each
        var pipeline = 11 * (1e-4 * 16 / 4 + 2 * Alpha) + 0.001 + new AlphaBeta(Alpha, Beta).RingAllreduce(4, 250_000);
        Assert.That(p.Pipeline.StepSeconds, Is.EqualTo(pipeline).Within(1e-12));
        Assert.That(weak[1].Psgd.Efficiency, Is.LessThan(p.Psgd.Efficiency), "more ranks, more latency");

        var strong = model.Project(ScalingMode.Strong, [16], batch: 512, tau: 8, stages: 4, microBatches: 8, activationBytes: 0)[0];
        Assert.That(strong.PerRankBatch, Is.EqualTo(32));
        Assert.That(strong.Psgd.Efficiency, Is.EqualTo((0.001 + 512e-4) / (16 * (0.0042 + ar16))).Within(1e-12), "strong: T1 / (n T(n))");

        // With a free network and no fixed costs, PSGD is perfectly efficient and the pipeline loses exactly its bubble.
        var ideal = new PerformanceModel(new AlphaBeta(0, 0), new AlphaBeta(0, 0), new LinearCost(0, 1e-4), new LinearCost(0, 0), 1_000_000)
            .Project(ScalingMode.Weak, [64], 32, 8, 4, 8, 1024)[0];
        Assert.That(ideal.Psgd.Efficiency, Is.EqualTo(1).Within(1e-12));
        Assert.That(ideal.Pipeline.Efficiency, Is.EqualTo(1 - ideal.PipelineBubble).Within(1e-12));
    }

    [Test]
    public void FitAndValidateFromRuns()
    {
        var truth = new AlphaBeta(Alpha, Beta);
        var allreduce = Sizes.Select(s => new TimingSample(2, s, truth.RingAllreduce(2, s))).ToList();
        var pingPong = Sizes.Select(s => new TimingSample(2, s, truth.PointToPoint(s))).ToList();
        // runs made by the model itself: compute 1 ms + 50 us/sample, other 0.1 ms, gradient 800 kB
        ScalingRun Make(ScalingMode mode, int n, int batch)
        {
            var b = batch / n;
            var comm = truth.RingAllreduce(n, 800_000);
            var step = 0.001 + b * 50e-6 + 0.0001 + comm;
            return ScalingCsvTests.Run(mode, n, 1, batch, step, compute: 0.001 + b * 50e-6, communication: comm, other: 0.0001) with
            {
                PayloadBytes = n > 1 ? 800_000 : 0,
            };
        }

        ScalingRun[] runs = [Make(ScalingMode.Strong, 1, 256), Make(ScalingMode.Strong, 2, 256), Make(ScalingMode.Strong, 4, 256), Make(ScalingMode.Weak, 2, 64)];
        var model = PerformanceModel.Fit(runs, allreduce, pingPong, LinkTopology.PerRank, out var why);
        Assert.That(model, Is.Not.Null, why);
        Assert.That(model!.GradientBytes, Is.EqualTo(800_000));
        Assert.That(model.Allreduce.Alpha, Is.EqualTo(Alpha).Within(1e-3 * Alpha));
        var checks = model.Validate(ScalingPoint.Summarize(runs));
        Assert.That(checks.Select(c => Math.Abs(c.StepError)), Is.All.LessThan(1e-6));
        Assert.That(checks.First(c => c.Ranks == 1).CommunicationError, Is.NaN);

        Assert.That(PerformanceModel.Fit([runs[0]], allreduce, pingPong, LinkTopology.PerRank, out why), Is.Null);
        Assert.That(why, Does.Contain("gradient size is unknown"));
        Assert.That(PerformanceModel.Fit(runs, [], [], LinkTopology.PerRank, out why), Is.Null);
        Assert.That(why, Does.Contain("Allreduce timings"));
    }
}
