using MpiPipeline.Mpi;
using MpiPipeline.Pipeline;
using MpiPipeline.Smoothing;

namespace MpiPipeline.Tests.Smoothing;

/// <summary>What <c>mpipipe pprs</c> builds before it runs: problems, parameters, the ranks' node ranges, validation.</summary>
[TestFixture]
internal sealed class PprsExperimentTests
{
    [TestCase(20, 1, new[] { 20 })]
    [TestCase(20, 3, new[] { 7, 7, 6 })]
    [TestCase(200, 4, new[] { 50, 50, 50, 50 })]
    [TestCase(5, 5, new[] { 1, 1, 1, 1, 1 })]
    public void DeltaNodesAreSpreadEvenlyOverTheRanks(int depth, int ranks, int[] counts)
    {
        var ranges = MpiChainOracle.EvenRanges(depth, ranks);
        Assert.That(ranges.Select(r => r.Count), Is.EqualTo(counts));
        Assert.That(ranges[0].Start, Is.EqualTo(0));
        Assert.That(ranges[^1].End, Is.EqualTo(depth));
    }

    [Test]
    public void MoreRanksThanNodesIsAnInputError() =>
        Assert.That(() => MpiChainOracle.EvenRanges(3, 4), Throws.TypeOf<InputException>().With.Message.Contains("use at most 3 ranks"));

    [Test]
    public void TheNonSmoothProblemIsEq8WithLine58sWeights()
    {
        var f = PprsProblem.NonSmooth(101, 1, 1);
        Assert.That((f.Dimension, f.K, f.L), Is.EqualTo((101, 25, 50)));
        Assert.That(f.PairWeight, Is.EqualTo(1 / (9 * Math.Sqrt(25))).Within(1e-15));
        Assert.That(f.MaxWeight, Is.EqualTo(1 / 9.0).Within(1e-15));
        Assert.That(f.DistanceToMinimizer, Is.EqualTo(1).Within(1e-12), "alpha makes ||theta*|| = R");
        Assert.That(() => PprsProblem.NonSmooth(3, 1, 1), Throws.TypeOf<InputException>());
    }

    [Test]
    public void PprsDefaultsAreEq13AndABudgetBuysTheIterationsThatFit()
    {
        var options = new PprsOptions { Problem = "nonsmooth", Depth = 10, Iterations = 30, Dimension = 101 };
        using var problem = PprsProblem.Create(options);
        var p = PprsExperiment.PprsParametersFor(options, problem, 0);
        var eq13 = PprsParameters.Defaults(problem.Lipschitz, problem.Radius, 101, 30);
        Assert.That(p, Is.EqualTo(eq13), "gamma = R d^(-1/4)/(T+1), K = ceil((T+1)/sqrt d), eta = gamma/L");

        var budgeted = PprsExperiment.PprsParametersFor(options with { Budget = 1000 }, problem, 8);
        Assert.That(budgeted.Samples, Is.EqualTo(8));
        Assert.That(budgeted.Iterations, Is.EqualTo(1000 / (2 * (8 + 10 - 1))), "T = floor(t / 2(K + Delta - 1)), Eq. 14");

        var given = PprsExperiment.PprsParametersFor(options with { Gamma = 0.3, PprsStep = 0.7 }, problem, 2);
        Assert.That((given.Gamma, given.StepSize, given.Samples), Is.EqualTo((0.3, 0.7, 2)));
    }

    [TestCase("smooth")]
    [TestCase("nonconvex")]
    [TestCase("nonsmooth")]
    public void WorstCaseProblemsAreChainsOfDeltaNodesWithTheirClosedForm(string name)
    {
        using var problem = PprsProblem.Create(new PprsOptions { Problem = name, Depth = 6, Dimension = 21 });
        Assert.That(problem.Chain.Depth, Is.EqualTo(6));
        Assert.That(problem.Dimension, Is.EqualTo(21));
        var theta = SmoothingTestHelpers.RandomPoint(21, 5, 0.8);
        Assert.That(problem.Chain.Value(theta), Is.EqualTo(problem.ClosedForm!(theta)).Within(1e-12));
    }

    [TestCase("--delta", 0, "Delta of the chain must be >= 1")]
    [TestCase("--samples", 0, "K >= 1")]
    [TestCase("ranks", 30, "use at most 20 ranks")]
    public void BadOptionsAreInputErrors(string what, int value, string message)
    {
        var options = what switch
        {
            "--delta" => new PprsOptions { Depth = value },
            "--samples" => new PprsOptions { Samples = [4, value] },
            _ => new PprsOptions { Depth = 20 },
        };
        var ranks = what == "ranks" ? value : 1;
        Assert.That(() => options.Validate(ranks), Throws.TypeOf<InputException>().With.Message.Contains(message));
    }

    [Test]
    public void CsvHasOneRowPerCurvePoint()
    {
        var run = new PprsMethodRun("pprs", "PPRS K = 2", 2, 1, 0.1, 0.2, 2 * (2 + 3 - 1), 0.5, 0.5, 0.01, double.NaN, double.NaN,
            [new(0, 0, 1.5, 0), new(1, 8, 0.5, 0.01)]);
        var result = new PprsResult("nonsmooth", "", 3, 4, 1, [new LayerRange(0, 3).ToString()], null, new Dictionary<string, string>(), [run]);
        var lines = result.ToCsv().TrimEnd().Split('\n');
        Assert.That(lines, Has.Length.EqualTo(3));
        Assert.That(lines[2], Is.EqualTo("nonsmooth,3,pprs,PPRS K = 2,2,0.1,0.2,1,8,0.5,0.0100"));
        Assert.That(result.ToPlot().Series.Single().Points, Has.Count.EqualTo(2));
    }
}
