using MpiPipeline.Mpi;
using MpiPipeline.Pipeline;

namespace MpiPipeline.Tests.Pipeline;

/// <summary>Partitions by balance and by cost against literal expected ranges, and by cost against brute force.</summary>
[TestFixture]
internal sealed class PartitionTests
{
    private static string Text(IEnumerable<LayerRange> ranges) => string.Join(' ', ranges);

    // ---- by balance ----

    [Test]
    public void ByBalanceCutsConsecutiveRanges()
    {
        Assert.That(Text(Partition.ByBalance(7, [3, 2, 2])), Is.EqualTo("[0, 3) [3, 5) [5, 7)"));
        Assert.That(Text(Partition.ByBalance(4, [1, 1, 1, 1])), Is.EqualTo("[0, 1) [1, 2) [2, 3) [3, 4)"));
        Assert.That(Text(Partition.ByBalance(5, [5])), Is.EqualTo("[0, 5)"));
        Assert.That(Partition.ToBalance(Partition.ByBalance(7, [3, 2, 2])), Is.EqualTo(new[] { 3, 2, 2 }));
    }

    [Test]
    public void BalanceThatDoesNotAddUpSaysWhatItMustAddUpTo()
    {
        var error = Assert.Throws<InputException>(() => Partition.ByBalance(8, [3, 2, 2]))!;
        Assert.That(error.Message, Is.EqualTo("balance 3,2,2 adds up to 7 layers but the model has 8: give per-stage counts that add up to 8"));
        Assert.That(error.SameOnEveryRank, Is.True);
    }

    [Test]
    public void StageWithoutLayersIsAnError() =>
        Assert.That(Assert.Throws<InputException>(() => Partition.ByBalance(5, [3, 0, 2]))!.Message,
            Is.EqualTo("balance 3,0,2 gives stage 1 0 layers: every stage needs at least one layer"));

    [Test]
    public void MoreStagesThanLayersIsAnError() =>
        Assert.That(Assert.Throws<InputException>(() => Partition.ByBalance(3, [1, 1, 1, 0]))!.Message,
            Is.EqualTo("balance 1,1,1,0 asks for 4 stages but the model has only 3 layers: use at most 3 stages"));

    [Test]
    public void EmptyBalanceIsAnError() =>
        Assert.That(Assert.Throws<InputException>(() => Partition.ByBalance(3, []))!.Message, Does.Contain("balance is empty"));

    // ---- parsing --balance ----

    [TestCase("3,2,2", new[] { 3, 2, 2 })]
    [TestCase(" 3, 2 ,2 ", new[] { 3, 2, 2 })]
    [TestCase("12", new[] { 12 })]
    public void ParsesBalance(string text, int[] expected) => Assert.That(Partition.ParseBalance(text), Is.EqualTo(expected));

    [TestCase("", "--balance is empty")]
    [TestCase("  ", "--balance is empty")]
    [TestCase("3,,2", "an empty entry for stage 1")]
    [TestCase("3,x,2", "'x' for stage 1 is not a layer count >= 1")]
    [TestCase("3,-1", "'-1' for stage 1")]
    [TestCase("0,3", "'0' for stage 0")]
    [TestCase("2.5", "'2.5' for stage 0")]
    public void BadBalanceTextSaysWhatToGive(string text, string expected)
    {
        var error = Assert.Throws<InputException>(() => Partition.ParseBalance(text))!;
        Assert.That(error.Message, Does.Contain(expected).And.Contain("e.g. 3,2,2"));
    }

    // ---- by cost ----

    [Test]
    public void ByCostLiteralPartitions()
    {
        Assert.That(Text(Partition.ByCost([1, 1, 1, 1], 2)), Is.EqualTo("[0, 2) [2, 4)"));
        Assert.That(Text(Partition.ByCost([4, 1, 1, 1, 1], 2)), Is.EqualTo("[0, 1) [1, 5)"));
        // The classic: 1..9 in 3 parts; bottleneck 17 = 8 + 9, and the first parts as short as that allows.
        Assert.That(Text(Partition.ByCost([1, 2, 3, 4, 5, 6, 7, 8, 9], 3)), Is.EqualTo("[0, 5) [5, 7) [7, 9)"));
        Assert.That(Text(Partition.ByCost([5, 1, 1, 1], 4)), Is.EqualTo("[0, 1) [1, 2) [2, 3) [3, 4)"));
        Assert.That(Text(Partition.ByCost([3, 1, 4, 1, 5], 1)), Is.EqualTo("[0, 5)"));
    }

    [Test]
    public void ByParameterCountLayersWithoutParametersRideAlong()
    {
        // conv 320, relu, pool, conv 18496, relu, flatten, linear 1e6, relu, linear 1290. The big linear alone sets
        // the bottleneck (1e6 + 1290); stage 0 takes as few layers as that allows: the ones before the relu.
        double[] parameters = [320, 0, 0, 18496, 0, 0, 1_000_000, 0, 1290];
        Assert.That(Text(Partition.ByCost(parameters, 2)), Is.EqualTo("[0, 4) [4, 9)"));
        Assert.That(Text(Partition.ByCost([0, 0, 0], 2)), Is.EqualTo("[0, 1) [1, 3)"));
    }

    [Test]
    public void ByCostErrors()
    {
        Assert.That(Assert.Throws<InputException>(() => Partition.ByCost([1, 2, 3], 4))!.Message,
            Is.EqualTo("4 stages but the model has only 3 layers: use at most 3 stages"));
        Assert.Throws<InputException>(() => Partition.ByCost([1, 2, 3], 0));
        Assert.Throws<InputException>(() => Partition.ByCost([], 1));
        Assert.That(Assert.Throws<InputException>(() => Partition.ByCost([1, -2, 3], 2))!.Message, Does.Contain("layer 1 has cost -2"));
        Assert.Throws<InputException>(() => Partition.ByCost([1, double.NaN], 2));
    }

    [Test]
    public void ByCostMatchesBruteForce()
    {
        var random = new Random(7);
        for (var layers = 1; layers <= 8; layers++)
        {
            for (var stages = 1; stages <= layers; stages++)
            {
                for (var trial = 0; trial < 10; trial++)
                {
                    // Small integers: many ties, so the tie rule is exercised; sums are exact in doubles.
                    var costs = Enumerable.Range(0, layers).Select(_ => (double)random.Next(0, 6)).ToArray();
                    var all = Compositions(layers, stages).ToList();
                    var least = all.Min(sizes => Bottleneck(costs, sizes));
                    var expected = all.Where(sizes => Bottleneck(costs, sizes) == least).OrderBy(s => s, LexicographicOrder).First();
                    var actual = Partition.ToBalance(Partition.ByCost(costs, stages));
                    Assert.That(actual, Is.EqualTo(expected), $"costs {string.Join(',', costs)} in {stages} stages");
                }
            }
        }
    }

    private static readonly Comparer<int[]> LexicographicOrder = Comparer<int[]>.Create((a, b) =>
        a.Zip(b).Select(p => p.First.CompareTo(p.Second)).FirstOrDefault(c => c != 0));

    /// <summary>Every way to write <paramref name="total"/> as an ordered sum of <paramref name="parts"/> positive integers.</summary>
    private static IEnumerable<int[]> Compositions(int total, int parts)
    {
        if (parts == 1)
        {
            yield return [total];
            yield break;
        }

        for (var first = 1; first <= total - parts + 1; first++)
        {
            foreach (var rest in Compositions(total - first, parts - 1))
            {
                yield return [first, .. rest];
            }
        }
    }

    private static double Bottleneck(double[] costs, int[] sizes)
    {
        double worst = 0;
        var start = 0;
        foreach (var size in sizes)
        {
            worst = Math.Max(worst, costs.Skip(start).Take(size).Sum());
            start += size;
        }

        return worst;
    }
}
