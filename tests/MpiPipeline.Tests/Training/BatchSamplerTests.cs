using MpiPipeline.Data;
using MpiPipeline.Mpi;
using MpiPipeline.Training;

namespace MpiPipeline.Tests.Training;

[TestFixture]
public sealed class BatchSamplerTests
{
    /// <summary>n workers' slices at step t, concatenated in rank order, are one worker's global batch at step t.</summary>
    [TestCase(2)]
    [TestCase(3)]
    [TestCase(4)]
    public void ShuffleSlicesOfAllWorkersAreTheSingleWorkerGlobalBatch(int workers)
    {
        const int count = 1000, globalBatch = 96;
        var single = new ShuffleSampler(count, seed: 7, globalBatch, worker: 0, workers: 1);
        var parts = Enumerable.Range(0, workers).Select(r => new ShuffleSampler(count, 7, globalBatch, r, workers)).ToArray();
        var whole = new int[globalBatch];
        var slice = new int[globalBatch / workers];
        foreach (var step in new long[] { 0, 1, 9, 10, 11, 25 })   // 10 steps per epoch: crosses epochs 0, 1, 2
        {
            single.Indices(step, whole);
            var joined = new List<int>();
            foreach (var part in parts)
            {
                part.Indices(step, slice);
                joined.AddRange(slice);
            }

            Assert.That(joined, Is.EqualTo(whole), $"step {step}");
        }
    }

    [Test]
    public void ShuffleEpochVisitsDistinctSamplesAndTheNextEpochIsAnotherOrder()
    {
        var sampler = new ShuffleSampler(100, seed: 3, globalBatch: 10, worker: 0, workers: 1);
        var batch = new int[10];
        var epoch0 = new List<int>();
        var epoch1 = new List<int>();
        for (var t = 0; t < 10; t++)
        {
            sampler.Indices(t, batch);
            epoch0.AddRange(batch);
            sampler.Indices(t + 10, batch);
            epoch1.AddRange(batch);
        }

        Assert.That(epoch0.Order(), Is.EqualTo(Enumerable.Range(0, 100)));
        Assert.That(epoch1.Order(), Is.EqualTo(Enumerable.Range(0, 100)));
        Assert.That(epoch1, Is.Not.EqualTo(epoch0));
    }

    /// <summary>RI-SGD: worker j draws only from chunks j..j+q-1 (mod p), and goes through all it holds before repeating.</summary>
    [TestCase(4, 1, 0)]
    [TestCase(4, 2, 3)]
    [TestCase(3, 3, 1)]
    public void ChunkSamplerDrawsFromTheHeldChunksOnly(int p, int q, int worker)
    {
        const int count = 120, batch = 6;
        var sampler = new ChunkSampler(count, p, q, worker, seed: 5, batch);
        var held = RedundantChunks.HeldSamples(worker, count, p, q).ToHashSet();
        Assert.That(sampler.HeldSamples, Is.EqualTo(held.Count));
        Assert.That(held.Count, Is.EqualTo(q * count / p));
        var drawn = new List<int>();
        var indices = new int[batch];
        for (var t = 0; t < held.Count / batch; t++)
        {
            sampler.Indices(t, indices);
            drawn.AddRange(indices);
        }

        Assert.That(drawn.ToHashSet().SetEquals(held), Is.True, "one pass over the held samples");
        Assert.That(drawn, Has.Count.EqualTo(held.Count));
    }

    [Test]
    public void ChunkSamplerIsDeterministicAndPerWorker()
    {
        int[] Draw(int worker)
        {
            var s = new ChunkSampler(400, 4, 2, worker, seed: 11, batch: 8);
            var all = new List<int>();
            var b = new int[8];
            for (var t = 0; t < 30; t++)
            {
                s.Indices(t, b);
                all.AddRange(b);
            }

            return [.. all];
        }

        Assert.That(Draw(1), Is.EqualTo(Draw(1)));
        Assert.That(Draw(1), Is.Not.EqualTo(Draw(2)));
    }

    [TestCase("psgd", 4, 1, 1, 102, "--batch 102 is the global mini-batch and must be divisible by the 4 workers (each takes batch / workers); try --batch 104")]
    [TestCase("local-sgd", 2, 0, 1, 64, "--tau must be >= 1")]
    [TestCase("ri-sgd", 3, 4, 4, 60, "--redundancy 4 is out of range: each of the p = 3 workers holds q chunks out of p, so 1 <= q <= 3")]
    [TestCase("single", 2, 1, 1, 64, "--algo single trains on one rank, but the job has 2 ranks")]
    [TestCase("psgd", 2, 4, 1, 64, "--tau applies to --algo local-sgd, ri-sgd only (got --algo psgd)")]
    public void BadOptionsAreInputErrorsThatSayWhatIsWrong(string algorithm, int workers, int tau, int q, int batch, string message)
    {
        var options = new TrainOptions { Algorithm = algorithm, Tau = tau, Redundancy = q, Batch = batch };
        var error = Assert.Throws<InputException>(() => options.Validate(workers))!;
        Assert.That(error.Message, Does.Contain(message));
        Assert.That(error.SameOnEveryRank, Is.True);
    }

    [Test]
    public void FailRankZeroIsRefusedBecauseRankZeroReports()
    {
        var options = new TrainOptions { Algorithm = "ri-sgd", Redundancy = 2, FailRank = 0, FailStep = 3 };
        Assert.That(() => options.Validate(4), Throws.TypeOf<InputException>().With.Message.Contains("rank 0 reports the results"));
    }

    [TestCase(new float[] { 1, 2, 3 }, 0.5f)]
    [TestCase(new float[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17 }, 0.25f)]
    public void ScaleMultipliesEveryElement(float[] values, float factor)
    {
        var expected = values.Select(v => v * factor).ToArray();
        MpiPipeline.Exchange.AllreduceExchange.Scale(values, factor);
        Assert.That(values, Is.EqualTo(expected));
    }
}
