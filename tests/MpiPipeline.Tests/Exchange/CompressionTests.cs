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
        var payload = QuantizedCodec.Encode(scales, levels, d, new BitWriter(), out _).ToArray();
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
        var payload = QuantizedCodec.Encode(scales, levels, d, new BitWriter(), out _).ToArray();
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
        var bytes = QuantizedCodec.Encode(scales, levels, 512, new BitWriter(), out var counted).Length;
        Assert.That(8.0 * bytes / u.Length, Is.LessThan(1.0));
        Assert.That(QuantizedCodec.PerCoordinateGammaBits(scales, levels, 512) / (double)u.Length, Is.GreaterThanOrEqualTo(1.0));
        Assert.That(counted, Is.EqualTo(QuantizedCodec.PerCoordinateGammaBits(scales, levels, 512)), "the alternative counted while encoding");
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

    /// <summary>Codes of every length the window reads in one load and past it (up to 63 bits), at every bit offset; a cut
    /// stream is an error, not a value.</summary>
    [Test]
    public void BitReaderReadsEveryGammaLength()
    {
        var values = new List<ulong>();
        for (var bits = 0; bits < 63; bits++)
        {
            values.Add(1UL << bits);
            values.Add((1UL << bits) | ((1UL << bits) - 1) >> 1);
            values.Add(2UL * (1UL << bits) - 1);
        }

        var writer = new BitWriter();
        writer.Reset(0);
        foreach (var (v, i) in values.Select((v, i) => (v, i)))
        {
            writer.WriteGamma(v);
            writer.WriteBits((ulong)i % 2, 1);            // shifts the next code's offset by one bit every other time
        }

        var payload = writer.Payload.ToArray();
        Assert.That(payload.Length, Is.EqualTo((values.Sum(v => BitWriter.GammaBits(v) + 1) + 7) / 8));
        var reader = new BitReader(payload);
        foreach (var (v, i) in values.Select((v, i) => (v, i)))
        {
            Assert.That(reader.ReadGamma(), Is.EqualTo(v));
            Assert.That(reader.ReadBit(), Is.EqualTo(i % 2 == 1));
        }

        Assert.Throws<InvalidDataException>(() =>
        {
            var cut = new BitReader(payload.AsSpan(0, payload.Length - 9));
            foreach (var _ in values)
            {
                cut.ReadGamma();
                cut.ReadBit();
            }
        });
    }

    [TestCase("none", null)]
    [TestCase("topk:0.01", "topk:0.01")]
    [TestCase("topk:1", "topk:1")]
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
        Assert.That(c.Alpha * c.Alpha * gamma, Is.EqualTo(0.5).Within(1e-6));
        Assert.That((c.Alpha * c.Alpha * gamma) + Math.Pow(c.Beta - c.Alpha, 2), Is.EqualTo(0.95).Within(1e-6));
        Assert.That(c.Alpha, Is.EqualTo(0.2973).Within(1e-4));
        Assert.That(c.Beta, Is.EqualTo(0.9681).Within(1e-4));
    }

    [TestCase("ecq:2", 0.2102, 0.8810)]          // gamma = sqrt(512)/2 = 11.3
    [TestCase("ecq:4,1024", 0.25, 0.9208)]       // gamma = 8
    [TestCase("ecq:64", 1.0, 1.0)]               // gamma = 0.125: plain error feedback
    [TestCase("ecq:4,512,0.5", 0.5, 0.5)]        // alpha alone: beta = alpha
    public void EcqDefaults(string spec, double alpha, double beta)
    {
        var c = (EcqCompressor)CompressorRegistry.Create(spec, new CompressorContext(1, 0))!;
        Assert.That(c.Alpha, Is.EqualTo(alpha).Within(1e-4));
        Assert.That(c.Beta, Is.EqualTo(beta).Within(1e-4));
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
    [TestCase("topk:2", "R (the fraction kept) must be in (0, 1]")]
    [TestCase("topk:0", "R (the fraction kept) must be in (0, 1]")]
    [TestCase("topk", "needs its arguments")]
    [TestCase("topk:0.1,2", "takes at most 1 numbers")]
    [TestCase("zip", "unknown --compress 'zip'")]
    public void BadSpecsAreUsageErrors(string spec, string message)
    {
        var error = Assert.Throws<InputException>(() => CompressorRegistry.Validate(spec))!;
        Assert.That(error.Message, Does.Contain(message));
        Assert.That(error.Message, Does.Contain("--compress"));
    }

    /// <summary>Top-k error feedback: g + e_old = sent + e_new exactly (a coordinate is sent whole or kept whole), and
    /// exactly k = ceil(R n) coordinates go on the wire, the largest by magnitude.</summary>
    [TestCase(0.01, 1000)]
    [TestCase(0.1, 777)]
    [TestCase(1.0, 50)]
    public void TopKResidualIdentityAndExactKeptCount(double fraction, int length)
    {
        var c = new TopKCompressor(fraction);
        var k = (int)Math.Ceiling(fraction * length);
        var residual = new float[length];
        for (var t = 0; t < 5; t++)
        {
            var g = Vector(length, 40 + t);
            var u = g.Select((x, i) => x + residual[i]).ToArray();
            var payload = c.Encode(g, t).ToArray();
            Assert.That(payload, Has.Length.EqualTo(8 * k), $"step {t}: exactly k = {k} (index, value) pairs");
            var sent = new float[length];
            c.DecodeAdd(payload, sent);
            residual = c.Residual.ToArray();
            for (var i = 0; i < length; i++)
            {
                Assert.That(sent[i] + residual[i], Is.EqualTo(u[i]), $"step {t}, coordinate {i}: g + e = sent + e'");
                Assert.That(sent[i] == 0 || residual[i] == 0, Is.True, "a coordinate is sent whole or not at all");
            }

            var smallestSent = sent.Where(x => x != 0).Min(Math.Abs);
            Assert.That(residual.Max(Math.Abs), Is.LessThanOrEqualTo(smallestSent), $"step {t}: the k largest of g + e were sent");
        }
    }

    [Test]
    public void TopKKeepsExactlyKAmongTies()
    {
        // All magnitudes equal: the threshold ties everywhere; the lowest indices go, exactly k of them.
        var g = Enumerable.Range(0, 300).Select(i => i % 2 == 0 ? 0.25f : -0.25f).ToArray();
        var c = new TopKCompressor(0.05);
        var payload = c.Encode(g, 0).ToArray();
        Assert.That(payload, Has.Length.EqualTo(8 * 15));
        var sent = new float[g.Length];
        c.DecodeAdd(payload, sent);
        Assert.That(Enumerable.Range(0, g.Length).Where(i => sent[i] != 0), Is.EqualTo(Enumerable.Range(0, 15)));
    }

    [Test]
    public void TopKSelectFindsTheOrderStatistic()
    {
        var random = new Random(3);
        foreach (var n in new[] { 1, 2, 3, 10, 1001 })
        {
            var values = Enumerable.Range(0, n).Select(_ => (float)random.Next(0, 20)).ToArray();   // many duplicates
            var sorted = values.Order().ToArray();
            foreach (var order in new[] { 0, n / 2, n - 1 })
            {
                Assert.That(TopKCompressor.Select(values.ToArray(), order), Is.EqualTo(sorted[order]), $"n = {n}, order {order}");
            }
        }
    }

    [Test]
    public void TopKRejectsAMalformedPayload()
    {
        var c = new TopKCompressor(0.5);
        Assert.Throws<InvalidDataException>(() => c.DecodeAdd(new byte[7], new float[4]));
        var outside = new byte[8];
        outside[0] = 4;
        Assert.Throws<InvalidDataException>(() => c.DecodeAdd(outside, new float[4]));
    }

    /// <summary>
    /// Buckets of the overlapped exchange: an error-feedback compressor fed the gradient bucket by bucket keeps one
    /// residual per coordinate, each bucket updating its own slice: it equals, slice for slice, what that compressor
    /// gives when each bucket is the only thing it ever encoded (a fresh compressor per bucket, offset in a gradient of
    /// the full length), over several steps.
    /// </summary>
    [TestCase("ecq:4,64")]
    [TestCase("topk:0.1")]
    public void BucketsKeepTheirOwnSliceOfTheResidual(string spec)
    {
        (int Offset, int Length)[] buckets = [(700, 100), (130, 570), (0, 130)];   // backward's order: the last first
        const int n = 800;
        var together = CompressorRegistry.Create(spec, new CompressorContext(3, 1))!;
        var alone = buckets.Select(_ => CompressorRegistry.Create(spec, new CompressorContext(3, 1))!).ToArray();
        for (var t = 0; t < 4; t++)
        {
            var g = Vector(n, 70 + t);
            for (var b = 0; b < buckets.Length; b++)
            {
                var (offset, length) = buckets[b];
                var slice = g.AsSpan(offset, length);
                var payload = together.Encode(slice, offset, n, t).ToArray();
                Assert.That(payload, Is.EqualTo(alone[b].Encode(slice, offset, n, t).ToArray()), $"step {t}, bucket {b}: the same payload");
                var decoded = new float[length];
                together.DecodeAdd(payload, decoded);
                Assert.That(decoded.Any(x => x != 0), Is.True, "a real payload");
            }

            foreach (var (b, (offset, length)) in buckets.Index())
            {
                Assert.That(together.Residual.Slice(offset, length).ToArray(), Is.EqualTo(alone[b].Residual.Slice(offset, length).ToArray()),
                    $"step {t}: bucket {b}'s slice of the residual is its own");
            }
        }

        Assert.That(together.Residual.Length, Is.EqualTo(n), "one residual value per coordinate of the whole gradient");
    }

    /// <summary>The whole gradient is the bucket at offset 0 of its own length: the two spellings encode the same.</summary>
    [TestCase("fp16")]
    [TestCase("topk:0.05")]
    [TestCase("qsgd:4,64")]
    [TestCase("ecq:4,64")]
    public void WholeGradientIsTheBucketAtOffsetZero(string spec)
    {
        var a = CompressorRegistry.Create(spec, new CompressorContext(5, 2))!;
        var b = CompressorRegistry.Create(spec, new CompressorContext(5, 2))!;
        for (var t = 0; t < 3; t++)
        {
            var g = Vector(1000, 90 + t, zeroBucket: 3, bucketSize: 64);
            Assert.That(a.Encode(g, t).ToArray(), Is.EqualTo(b.Encode(g, 0, g.Length, t).ToArray()), $"step {t}");
        }
    }

    /// <summary>Draw k rounds coordinate k: a slice quantized from its first coordinate's draw (on the d-grid) gets the
    /// whole vector's levels there, a zero bucket before it skipping its draws; started at draw 0 it does not.</summary>
    [Test]
    public void DrawsAreAFunctionOfTheCoordinate()
    {
        var q = new BucketQuantizer(4, 64);
        var u = Vector(640, 11, zeroBucket: 4, bucketSize: 64);       // [256, 320) is zero, just before the slice at 320
        var seed = BucketQuantizer.SeedFor(1, 0, 9);
        var wholeLevels = new int[u.Length];
        q.Quantize(u, seed, new float[q.BucketCount(u.Length)], wholeLevels);
        var slice = u.AsSpan(320);
        var levels = new int[slice.Length];
        q.Quantize(slice, seed, new float[q.BucketCount(slice.Length)], levels, firstCoordinate: 320);
        Assert.That(levels, Is.EqualTo(wholeLevels[320..]));
        q.Quantize(slice, seed, new float[q.BucketCount(slice.Length)], levels);
        Assert.That(levels, Is.Not.EqualTo(wholeLevels[320..]), "from draw 0 the rounding differs: the offset matters");
    }
}
