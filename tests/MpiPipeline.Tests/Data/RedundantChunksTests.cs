using MpiPipeline.Data;
using MpiPipeline.Mpi;

namespace MpiPipeline.Tests.Data;

/// <summary>RI-SGD's data placement against literal tables, coverage after failures, and the per-worker orders.</summary>
[TestFixture]
public sealed class RedundantChunksTests
{
    [Test]
    public void ChunkTableForFourWorkersTwoChunksEach()
    {
        int[][] expected = [[0, 1], [1, 2], [2, 3], [3, 0]];
        for (var worker = 0; worker < 4; worker++)
        {
            Assert.That(RedundantChunks.ChunksOf(worker, p: 4, q: 2), Is.EqualTo(expected[worker]), $"worker {worker}");
        }
    }

    [Test]
    public void ChunkTablesForTheExtremes()
    {
        Assert.That(Enumerable.Range(0, 3).Select(j => RedundantChunks.ChunksOf(j, 3, 1)), Is.EqualTo(new[] { new[] { 0 }, [1], [2] }));
        Assert.That(RedundantChunks.ChunksOf(2, 3, 3), Is.EqualTo(new[] { 2, 0, 1 }));
    }

    private static readonly int[] GridWorkers = [1, 2, 3, 5];
    private static readonly int[] GridRedundancies = [1, 2, 3];

    /// <summary>The (p, q) pairs of the grid with 1 &lt;= q &lt;= p: every case the placement must serve.</summary>
    private static IEnumerable<TestCaseData> ValidGrid() =>
        from p in GridWorkers from q in GridRedundancies where q <= p select new TestCaseData(p, q);

    /// <summary>The pairs of the same grid with q &gt; p: more chunks per worker than there are chunks.</summary>
    private static IEnumerable<TestCaseData> RedundancyAboveWorkersGrid() =>
        from p in GridWorkers from q in GridRedundancies where q > p select new TestCaseData(p, q);

    [TestCaseSource(nameof(ValidGrid))]
    public void EveryChunkIsHeldByExactlyQWorkers(int p, int q)
    {
        var holders = new int[p];
        for (var worker = 0; worker < p; worker++)
        {
            foreach (var chunk in RedundantChunks.ChunksOf(worker, p, q))
            {
                holders[chunk]++;
            }
        }

        Assert.That(holders, Is.All.EqualTo(q));
    }

    [TestCaseSource(nameof(RedundancyAboveWorkersGrid))]
    public void RedundancyAboveTheWorkerCountIsInputErrorForEveryWorker(int p, int q)
    {
        for (var worker = 0; worker < p; worker++)
        {
            var ex = Assert.Throws<InputException>(() => RedundantChunks.ChunksOf(worker, p, q), $"worker {worker}")!;
            Assert.That(ex.Message, Is.EqualTo(
                $"redundancy q = {q} is invalid for p = {p} workers: each worker holds q of the p data chunks, so q must be between 1 and {p}."));
        }
    }

    [Test]
    public void ChunkRangesAreEqualAndDropTheRemainder()
    {
        Assert.That(RedundantChunks.ChunkRange(0, 10, 3), Is.EqualTo((0, 3)));
        Assert.That(RedundantChunks.ChunkRange(1, 10, 3), Is.EqualTo((3, 6)));
        Assert.That(RedundantChunks.ChunkRange(2, 10, 3), Is.EqualTo((6, 9)));
        Assert.That(RedundantChunks.ChunkRange(3, 60_000, 4), Is.EqualTo((45_000, 60_000)));
        Assert.Throws<InputException>(() => RedundantChunks.ChunkRange(0, 3, 4));
    }

    [Test]
    public void HeldSamplesAreTheChunksInOrder()
    {
        Assert.That(RedundantChunks.HeldSamples(worker: 3, count: 8, p: 4, q: 2), Is.EqualTo(new[] { 6, 7, 0, 1 }));
        Assert.That(RedundantChunks.HeldSamples(worker: 1, count: 9, p: 4, q: 1), Is.EqualTo(new[] { 2, 3 }));
    }

    [TestCase(0)]
    [TestCase(5)]
    [TestCase(-1)]
    public void RedundancyOutsideOneToPIsInputError(int q)
    {
        var ex = Assert.Throws<InputException>(() => RedundantChunks.ChunksOf(0, 4, q))!;
        Assert.That(ex.Message, Does.Contain($"redundancy q = {q}").And.Contain("p = 4").And.Contain("between 1 and 4"));
        Assert.That(ex.SameOnEveryRank, Is.True);
    }

    [Test]
    public void WithoutRedundancyAFailedWorkersChunkIsLost()
    {
        var coverage = RedundantChunks.Covered([0, 1, 3], p: 4, q: 1);
        Assert.That(coverage.Covered, Is.EqualTo(new[] { 0, 1, 3 }));
        Assert.That(coverage.Missing, Is.EqualTo(new[] { 2 }));
        Assert.That(coverage.Complete, Is.False);
    }

    [TestCase(0)]
    [TestCase(2)]
    [TestCase(3)]
    public void WithTwoChunksEachOneFailedWorkerLosesNothing(int failed)
    {
        var alive = Enumerable.Range(0, 4).Where(j => j != failed);
        var coverage = RedundantChunks.Covered(alive, p: 4, q: 2);
        Assert.That(coverage.Covered, Is.EqualTo(new[] { 0, 1, 2, 3 }));
        Assert.That(coverage.Missing, Is.Empty);
        Assert.That(coverage.Complete, Is.True);
    }

    [Test]
    public void TwoAdjacentFailuresWithTwoChunksEachLoseOneChunk()
    {
        // Chunk 2 is held by workers 1 and 2 only.
        Assert.That(RedundantChunks.Covered([0, 3], p: 4, q: 2).Missing, Is.EqualTo(new[] { 2 }));
    }
}
