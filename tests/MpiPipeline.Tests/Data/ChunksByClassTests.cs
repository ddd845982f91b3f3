using MpiPipeline.Data;
using MpiPipeline.Engines;
using MpiPipeline.Training;

namespace MpiPipeline.Tests.Data;

/// <summary>
/// --split chunks-by-class: the samples sorted by label, then cut into RI-SGD's p chunks. Balanced labels i mod 10 on
/// 1000 samples and p = 4 give chunks of 250 positions, i.e. classes {0, 1, 2(half)}, {2(half), 3, 4}, {5, 6, 7(half)},
/// {7(half), 8, 9}: counted here by hand.
/// </summary>
[TestFixture]
public sealed class ChunksByClassTests
{
    private static readonly int[] Balanced = [.. Enumerable.Range(0, 1000).Select(i => i % 10)];

    [Test]
    public void ClassOrderSortsByLabelThenByIndex()
    {
        Assert.That(RedundantChunks.ClassOrder([2, 0, 1, 0, 2, 1]), Is.EqualTo(new[] { 1, 3, 2, 5, 0, 4 }));
    }

    [Test]
    public void EachChunkHoldsTheClassCountsOfItsRange()
    {
        var order = RedundantChunks.ClassOrder(Balanced);
        Dictionary<int, int>[] expected =
        [
            new() { [0] = 100, [1] = 100, [2] = 50 },
            new() { [2] = 50, [3] = 100, [4] = 100 },
            new() { [5] = 100, [6] = 100, [7] = 50 },
            new() { [7] = 50, [8] = 100, [9] = 100 },
        ];
        for (var chunk = 0; chunk < 4; chunk++)
        {
            // Worker j with q = 1 holds exactly chunk j.
            var counts = RedundantChunks.HeldSamples(chunk, Balanced.Length, p: 4, q: 1, order)
                .GroupBy(i => Balanced[i]).ToDictionary(g => g.Key, g => g.Count());
            Assert.That(counts, Is.EquivalentTo(expected[chunk]), $"chunk {chunk}");
        }

        Assert.That(RedundantChunks.ClassesPerChunk(Balanced, 4, order),
            Is.EqualTo(new[] { new[] { 0, 1, 2 }, [2, 3, 4], [5, 6, 7], [7, 8, 9] }));
        // The file's order (--split chunks) gives every chunk every class: the i.i.d. placement.
        Assert.That(RedundantChunks.ClassesPerChunk(Balanced, 4), Is.All.EqualTo(Enumerable.Range(0, 10).ToArray()));
    }

    [Test]
    public void WorkersHoldingTwoChunksSeeTheUnionOfTheirClasses()
    {
        var order = RedundantChunks.ClassOrder(Balanced);
        // Worker 3 holds chunks 3 and 0 (wrapping around): classes 7..9 and 0..2, 250 samples each.
        var held = RedundantChunks.HeldSamples(3, Balanced.Length, p: 4, q: 2, order);
        Assert.That(held, Has.Length.EqualTo(500).And.Unique);
        Assert.That(held.Select(i => Balanced[i]).Distinct().Order(), Is.EqualTo(new[] { 0, 1, 2, 7, 8, 9 }));
        Assert.That(DataParallelEngine.ClassesNote(Balanced, order, 4, 2), Is.EqualTo(
            "--split chunks-by-class: the samples sorted by label, cut into 4 chunks holding classes {0,1,2}; {2,3,4}; {5,6,7}; {7,8,9}; " +
            "with q = 2 the workers hold 5, 6, 5, 6 classes of 10"));
    }

    [Test]
    public void ChunkSamplerWithTheClassOrderDrawsOnlyItsClasses()
    {
        var order = RedundantChunks.ClassOrder(Balanced);
        var sampler = new ChunkSampler(Balanced.Length, p: 4, q: 1, worker: 1, seed: 3, batch: 10, order);
        var indices = new int[10];
        var labels = new HashSet<int>();
        for (var t = 0; t < 50; t++)
        {
            sampler.Indices(t, indices);
            labels.UnionWith(indices.Select(i => Balanced[i]));
        }

        Assert.That(labels.Order(), Is.EqualTo(new[] { 2, 3, 4 }));
    }

    [Test]
    public void AnOrderOfTheWrongLengthIsRefused()
    {
        Assert.Throws<ArgumentException>(() => RedundantChunks.HeldSamples(0, 10, 2, 1, [0, 1, 2]));
    }

    [Test]
    public void SplitNamesRoundTrip()
    {
        Assert.That(DataSplitNames.All.Select(s => s.Split.Name()), Is.EqualTo(new[] { "shuffle", "chunks", "chunks-by-class" }));
        Assert.That(DataSplit.ChunksByClass.IsChunked() && DataSplit.Chunks.IsChunked() && !DataSplit.Shuffle.IsChunked(), Is.True);
    }
}
