using MpiPipeline.Data;

namespace MpiPipeline.Tests.Data;

[TestFixture]
public sealed class ShuffleTests
{
    [Test]
    public void SplitMix64MatchesTheReferenceOutputs()
    {
        // splitmix64.c (Vigna) seeded with 1234567; the values quoted by Rosetta Code's "Splitmix64" task.
        var random = new SplitMix64(1234567);
        var outputs = Enumerable.Range(0, 5).Select(_ => random.NextUInt64()).ToArray();
        Assert.That(outputs, Is.EqualTo(new ulong[]
        {
            6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431, 16408922859458223821,
        }));
    }

    [Test]
    public void NextIntIsInRangeAndRoughlyUniform()
    {
        var random = new SplitMix64(7);
        var histogram = new int[3];
        for (var i = 0; i < 30_000; i++)
        {
            histogram[random.NextInt(3)]++;
        }

        Assert.That(histogram, Is.All.InRange(9_700, 10_300));
    }

    [Test]
    public void PermutationIsAPermutation()
    {
        var order = Shuffle.Permutation(1000, seed: 5, epoch: 2);
        Assert.That(order.Order(), Is.EqualTo(Enumerable.Range(0, 1000)));
        Assert.That(order, Is.Not.EqualTo(Enumerable.Range(0, 1000)));
    }

    [Test]
    public void PermutationIsDeterministic()
    {
        Assert.That(Shuffle.Permutation(500, 1, 3), Is.EqualTo(Shuffle.Permutation(500, 1, 3)));
        Assert.That(Shuffle.Permutation(500, 1, 3), Is.Not.EqualTo(Shuffle.Permutation(500, 1, 4)), "another epoch");
        Assert.That(Shuffle.Permutation(500, 1, 3), Is.Not.EqualTo(Shuffle.Permutation(500, 2, 3)), "another seed");
    }

    [Test]
    public void PermutationIsPinned()
    {
        // The order depends on nothing but the written-out SplitMix64 and Fisher-Yates: a change here changes every run.
        Assert.That(Shuffle.Permutation(10, seed: 42, epoch: 0), Is.EqualTo(PinnedOrder));
    }

    [Test]
    public void EdgeCounts()
    {
        Assert.That(Shuffle.Permutation(0, 1, 0), Is.Empty);
        Assert.That(Shuffle.Permutation(1, 1, 0), Is.EqualTo(new[] { 0 }));
    }

    [Test]
    public void SeedForSeparatesRanksStepsAndSeeds()
    {
        var seeds = new HashSet<long>();
        for (var rank = 0; rank < 8; rank++)
        {
            for (var step = 0L; step < 100; step++)
            {
                seeds.Add(Shuffle.SeedFor(1, rank, step));
            }
        }

        Assert.That(seeds, Has.Count.EqualTo(800));
        Assert.That(Shuffle.SeedFor(1, 2, 3), Is.EqualTo(Shuffle.SeedFor(1, 2, 3)));
        Assert.That(Shuffle.SeedFor(1, 2, 3), Is.Not.EqualTo(Shuffle.SeedFor(2, 2, 3)));
        Assert.That(Shuffle.SeedFor(1, 2, 3), Is.Not.EqualTo(Shuffle.SeedFor(1, 3, 2)));
    }

    /// <summary>Computed by an independent Python transcription of SplitMix64, Derive and Fisher-Yates.</summary>
    private static readonly int[] PinnedOrder = [9, 8, 1, 3, 2, 6, 7, 0, 4, 5];
}
