using MpiPipeline.Data;
using MpiPipeline.Mpi;

namespace MpiPipeline.Tests.Data;

[TestFixture]
public sealed class ShardingTests
{
    [Test]
    public void ShardsAreEqualContiguousBlocksAndDropTheRemainder()
    {
        int[] order = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20];
        Assert.That(Sharding.Shard(order, 0, 3).ToArray(), Is.EqualTo(new[] { 10, 11, 12 }));
        Assert.That(Sharding.Shard(order, 1, 3).ToArray(), Is.EqualTo(new[] { 13, 14, 15 }));
        Assert.That(Sharding.Shard(order, 2, 3).ToArray(), Is.EqualTo(new[] { 16, 17, 18 }));
        Assert.That(Sharding.Shard(order, 0, 1).ToArray(), Is.EqualTo(order));
        Assert.Throws<ArgumentOutOfRangeException>(() => Sharding.Shard(order, 3, 3));
    }

    [TestCase(2, 8)]
    [TestCase(4, 8)]
    [TestCase(3, 5)]
    public void RankSlicesOfAStepAreTheSingleRankGlobalBatch(int ranks, int perRankBatch)
    {
        const int count = 1000;
        var order = Shuffle.Permutation(count, seed: 3, epoch: 1);
        var steps = Sharding.StepsPerEpoch(count, perRankBatch, ranks);
        Assert.That(steps, Is.EqualTo(Sharding.StepsPerEpoch(count, perRankBatch * ranks, 1)), "single rank, batch n*b");

        for (var step = 0; step < steps; step++)
        {
            var union = new List<int>();
            for (var rank = 0; rank < ranks; rank++)
            {
                union.AddRange(Sharding.GlobalBatchSlice(order, step, perRankBatch, rank, ranks).ToArray());
            }

            var singleRank = Sharding.GlobalBatchSlice(order, step, perRankBatch * ranks, 0, 1).ToArray();
            Assert.That(union, Is.EqualTo(singleRank), $"step {step}");
            Assert.That(union, Is.EqualTo(Sharding.GlobalBatch(order, step, perRankBatch * ranks).ToArray()));
        }
    }

    [Test]
    public void GlobalBatchSliceIsTheDocumentedRange()
    {
        var order = Enumerable.Range(0, 100).ToArray();
        // step 2, b = 3, n = 4: order[2*12 + 1*3 .. +3] for rank 1.
        Assert.That(Sharding.GlobalBatchSlice(order, 2, 3, 1, 4).ToArray(), Is.EqualTo(new[] { 27, 28, 29 }));
    }

    [Test]
    public void StepsDropThePartialGlobalBatch()
    {
        Assert.That(Sharding.StepsPerEpoch(60_000, 64, 4), Is.EqualTo(234));
        var order = Enumerable.Range(0, 10).ToArray();
        Assert.That(Sharding.StepsPerEpoch(10, 2, 2), Is.EqualTo(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => Sharding.GlobalBatchSlice(order, 2, 2, 0, 2));
    }

    [Test]
    public void TooFewSamplesForOneGlobalBatchIsInputError()
    {
        var ex = Assert.Throws<InputException>(() => Sharding.StepsPerEpoch(100, 64, 2))!;
        Assert.That(ex.Message, Does.Contain("100 samples").And.Contain("global batch of 128"));
    }
}
