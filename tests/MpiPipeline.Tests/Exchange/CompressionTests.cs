using MpiPipeline.Exchange.Compression;
using MpiPipeline.Mpi;

namespace MpiPipeline.Tests.Exchange;

/// <summary>The gradient compressors without MPI: Q_s unbiased, the code exact, ECQ's residual the paper's recursion.</summary>
[TestFixture]
public sealed class CompressionTests
{
    /// <summary>Heavy-tailed values (as gradients are), with an all-zero bucket in the middle when the bucket size allows.</summary>
    private static float[] Vector(int length, int seed, int zeroBucket = -1, int bucketSize = 1)
    {
        var random = new Random(seed);
        var v = new float[length];
        for (var i = 0; i < length; i++)
        {
            var g = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
            v[i] = (float)(g * Math.Exp(2 * random.NextDouble()) * 1e-3);
        }

        if (zeroBucket >= 0 && (zeroBucket + 1) * bucketSize <= length)
        {
            v.AsSpan(zeroBucket * bucketSize, bucketSize).Clear();
        }

        return v;
    }

    [Test]
    public void QuantizerIsUnbiasedOverManyDraws()
    {
        const int s = 2, d = 16, draws = 40_000;
        var u = Vector(37, 1);                            // buckets of 16, 16 and a tail of 5
        var q = new BucketQuantizer(s, d);
        var scales = new float[q.BucketCount(u.Length)];
        var levels = new int[u.Length];
        var values = new float[u.Length];
        var mean = new double[u.Length];
        for (var t = 0; t < draws; t++)
        {
            q.Quantize(u, BucketQuantizer.SeedFor(7, 0, t), scales, levels);
            q.Dequantize(scales, levels, values);
            for (var i = 0; i < u.Length; i++)
            {
                Assert.That(Math.Abs(levels[i]), Is.LessThanOrEqualTo(s));
                mean[i] += values[i] / (double)draws;
            }
        }

        for (var i = 0; i < u.Length; i++)
        {
            // One draw is one of the two neighbouring levels, scale/s apart: its standard deviation is at most scale/(2s).
            var sigma = scales[i / d] / (2.0 * s) / Math.Sqrt(draws);
            Assert.That(mean[i], Is.EqualTo(u[i]).Within((5 * sigma) + 1e-9), $"coordinate {i}");
        }
    }

    [Test]
    public void RoundingDependsOnSeedRankAndStepOnly()
    {
        var u = Vector(1000, 2);
        var q = new BucketQuantizer(3, 64);
        byte[] Encode(int seed, int rank, long step) =>
            new QsgdCompressor(q, new CompressorContext(seed, rank)).Encode(u, step).ToArray();
        Assert.That(Encode(1, 0, 5), Is.EqualTo(Encode(1, 0, 5)));
        Assert.That(Encode(1, 1, 5), Is.Not.EqualTo(Encode(1, 0, 5)));
        Assert.That(Encode(1, 0, 6), Is.Not.EqualTo(Encode(1, 0, 5)));
        Assert.That(Encode(2, 0, 5), Is.Not.EqualTo(Encode(1, 0, 5)));
    }

    public static IEnumerable<TestCaseData> Codes()
    {
        foreach (var s in new[] { 1, 2, 3, 4, 7, 16, 255, 1 << 15 })
        {
            foreach (var d in new[] { 1, 3, 16, 512 })
            {
                yield return new TestCaseData(s, d).SetName($"s {s}, d {d}");
            }
        }
    }

    /// <summary>Encode then decode gives exactly Q(u) (bit for bit), every level and bucket size, a tail bucket and a zero bucket included.</summary>
    [TestCaseSource(nameof(Codes))]
    public void EncodeDecodeRoundTripIsExact(int s, int d)
    {
        var length = (3 * d) + Math.Max(1, d / 2) + (d > 1 ? 0 : 4);     // a shorter tail bucket whenever d > 1
        var u = Vector(length, s + d, zeroBucket: 1, bucketSize: d);
        var q = new BucketQuantizer(s, d);
        var scales = new float[q.BucketCount(length)];
        var levels = new int[length];
        q.Quantize(u, BucketQuantizer.SeedFor(3, 1, 4), scales, levels);
        var expected = new float[length];
        q.Dequantize(scales, levels, expected);
        var payload = QuantizedCodec.Encode(scales, levels, d, new BitWriter()).ToArray();
        var decoded = new float[length];
        QuantizedCodec.DecodeAdd(payload, q, decoded);
        Assert.That(decoded, Is.EqualTo(expected));
        Assert.That(levels.Distinct().Count(), Is.GreaterThan(1), "the vector exercises more than one level");

        // Decoding adds: into a non-zero sum it adds the same values.
        var sum = Enumerable.Repeat(0.5f, length).ToArray();
        QuantizedCodec.DecodeAdd(payload, q, sum);
        Assert.That(sum, Is.EqualTo(expected.Select(x => 0.5f + x).ToArray()));
    }

    [Test]
    public void EveryLevelRoundTrips()
    {
        // Levels -s..s at every position of a 2-bucket vector with one scale: exactly what was written comes back.
        const int s = 9, d = 19;
        var levels = Enumerable.Range(0, 2 * d + 1).Select(i => i % ((2 * s) + 1) - s).ToArray();
        float[] scales = [0.75f, 1.5f, 3f];
        var q = new BucketQuantizer(s, d);
        var payload = QuantizedCodec.Encode(scales, levels, d, new BitWriter()).ToArray();
        var decoded = new float[levels.Length];
        QuantizedCodec.DecodeAdd(payload, q, decoded);
        var expected = new float[levels.Length];
        q.Dequantize(scales, levels, expected);
        Assert.That(decoded, Is.EqualTo(expected));
    }

    [Test]
    public void ZeroGradientCostsItsScalesAndNoBits()
    {
        var c = new QsgdCompressor(new BucketQuantizer(4, 512), new CompressorContext(1, 0));
        Assert.That(c.Encode(new float[1200], 0).Length, Is.EqualTo(3 * sizeof(float)));
    }

    [Test]
    public void SmallSCodesUnderOneBitPerCoordinate()
    {
        // Gaussian-like values at s = 4, d = 512 (l2 scaling): most levels 0, the gaps coded: under a bit per coordinate,
        // where the per-coordinate Elias-gamma would spend at least one.
        var u = Vector(512 * 40, 11);
        var q = new BucketQuantizer(4, 512);
        var scales = new float[q.BucketCount(u.Length)];
        var levels = new int[u.Length];
        q.Quantize(u, 1, scales, levels);
        var bytes = QuantizedCodec.Encode(scales, levels, 512, new BitWriter()).Length;
        Assert.That(8.0 * bytes / u.Length, Is.LessThan(1.0));
        Assert.That(QuantizedCodec.PerCoordinateGammaBits(scales, levels, 512) / (double)u.Length, Is.GreaterThanOrEqualTo(1.0));
    }

    [TestCase(1f, 1f)]
    [TestCase(0.3f, 0.3f)]
    [TestCase(0.2f, 0.9f)]
    [TestCase(0.5f, 0f)]
    public void EcqResidualFollowsThePapersRecursion(float alpha, float beta)
    {
        const int length = 700;
        var q = new BucketQuantizer(4, 64);
        var ecq = new EcqCompressor(q, alpha, beta, new CompressorContext(5, 2));
        var h = new float[length];                        // h^(0) = 0
        for (var t = 0; t < 4; t++)
        {
            var g = Vector(length, 100 + t);
            var previous = h.ToArray();
            var payload = ecq.Encode(g, t).ToArray();
            var sent = new float[length];
            ecq.DecodeAdd(payload, sent);                 // g~^(t), as every rank decodes it

            // Independently: g~ = Q_s(g + alpha h) with the same draws, and h <- beta h + (g - g~).
            var u = g.Select((x, i) => x + (alpha * previous[i])).ToArray();
            var scales = new float[q.BucketCount(length)];
            var levels = new int[length];
            q.Quantize(u, BucketQuantizer.SeedFor(5, 2, t), scales, levels);
            var expected = new float[length];
            q.Dequantize(scales, levels, expected);
            Assert.That(sent, Is.EqualTo(expected), $"step {t}: the payload is Q(g + alpha h)");
            h = previous.Select((x, i) => (beta * x) + (g[i] - sent[i])).ToArray();
            Assert.That(ecq.Error.ToArray(), Is.EqualTo(h), $"step {t}: h = beta h + (g - g~)");
        }
    }

    [Test]
    public void QsgdIsEcqWithoutCompensation()
    {
        var q = new BucketQuantizer(4, 64);
        var g = Vector(300, 9);
        var qsgd = new QsgdCompressor(q, new CompressorContext(1, 1)).Encode(g, 3).ToArray();
        var ecq = new EcqCompressor(q, 0, 0, new CompressorContext(1, 1)).Encode(g, 3).ToArray();
        Assert.That(ecq, Is.EqualTo(qsgd));
    }

    [Test]
    public void Fp16RoundTripsThroughHalf()
    {
        var g = Vector(101, 4);
        var c = new Fp16Compressor();
        var payload = c.Encode(g, 0).ToArray();
        Assert.That(payload, Has.Length.EqualTo(2 * g.Length));
        var sum = new float[g.Length];
        c.DecodeAdd(payload, sum);
        Assert.That(sum, Is.EqualTo(g.Select(x => (float)(Half)x).ToArray()));
    }

    [TestCase("none", null)]
    [TestCase("fp16", "fp16")]
    [TestCase("qsgd:4", "qsgd:4,512")]
    [TestCase("qsgd:8,128", "qsgd:8,128")]
    [TestCase("ecq:4,512,1,0.5", "ecq:4,512,1,0.5")]
    [TestCase("ecq:32768", "ecq:32768,512,1,1")]
    public void SpecsParse(string spec, string? expected) =>
        Assert.That(CompressorRegistry.Create(spec, new CompressorContext(1, 0))?.Spec, Is.EqualTo(expected));

    [Test]
    public void EcqDefaultsMeetThePapersStabilityCondition()
    {
        var c = (EcqCompressor)CompressorRegistry.Create("ecq:4", new CompressorContext(1, 0))!;
        var gamma = Math.Min(512.0 / 16, Math.Sqrt(512) / 4);
        Assert.That(c.Alpha, Is.EqualTo(c.Beta));
        Assert.That((c.Alpha * c.Alpha * gamma) + Math.Pow(c.Beta - c.Alpha, 2), Is.EqualTo(0.5).Within(1e-6));
    }

    [TestCase("ecq:0", "S (levels) must be a whole number")]
    [TestCase("ecq:2.5", "S (levels) must be a whole number")]
    [TestCase("qsgd:4,0", "d (bucket size) must be a whole number")]
    [TestCase("ecq:4,512,1,2", "beta must be in [0, 1]")]
    [TestCase("ecq:4,512,-1", "alpha must be in [0, 1000]")]
    [TestCase("ecq", "needs its arguments")]
    [TestCase("ecq:x", "'x' is not a number")]
    [TestCase("qsgd:4,512,1", "takes at most 2 numbers")]
    [TestCase("fp16:2", "takes no arguments")]
    [TestCase("zip", "unknown --compress 'zip'")]
    public void BadSpecsAreUsageErrors(string spec, string message)
    {
        var error = Assert.Throws<InputException>(() => CompressorRegistry.Validate(spec))!;
        Assert.That(error.Message, Does.Contain(message));
        Assert.That(error.Message, Does.Contain("--compress"));
    }
}
