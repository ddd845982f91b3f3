using MpiPipeline.Mpi;
using MpiPipeline.Pipeline;
using MpiPipeline.Smoothing;
using static MpiPipeline.Tests.Smoothing.SmoothingTestHelpers;

namespace MpiPipeline.Tests.Smoothing;

/// <summary>The chain abstraction: validation, segments as ranks would run them, and the oracle's clock.</summary>
[TestFixture]
internal sealed class ChainTests
{
    [Test]
    public void ConsecutiveNodesMustAgreeAndTheLastOutputsAScalar()
    {
        Assert.Throws<InputException>(() => new Chain([]));
        Assert.Throws<InputException>(() => new Chain([new IdentityNode(3), new IdentityNode(4)]));
        Assert.Throws<InputException>(() => new Chain([new IdentityNode(3)]));
    }

    [Test]
    public void WorstCaseChainsHaveTheShapeOfTheSupplement()
    {
        var f = new SmoothConvexWorstCase(7, 3, 1);
        var chain = f.ToChain(5);
        Assert.That(chain.Depth, Is.EqualTo(5));
        Assert.That(chain.Nodes[0], Is.TypeOf<PartialSumNode>()); // i_1: R^d -> R^(d+1)
        Assert.That(chain.Nodes[0].OutputDimension, Is.EqualTo(8));
        Assert.That(chain.Nodes.Skip(1).Take(3), Is.All.TypeOf<IdentityNode>()); // i_2 .. i_(Delta-1)
        Assert.That(chain.Nodes[4], Is.TypeOf<FinalSumNode>()); // i_Delta: R^(d+1) -> R
        Assert.That(f.ToChain(1).Nodes.Single(), Is.TypeOf<WholeFunctionNode>());
        Assert.That(f.ToChain(2).Nodes.Select(n => n.GetType()), Is.EqualTo(new[] { typeof(PartialSumNode), typeof(FinalSumNode) }));
    }

    [TestCase(6, "6")]
    [TestCase(6, "1,2,3")]
    [TestCase(6, "2,2,1,1")]
    [TestCase(6, "1,1,1,1,1,1")]
    public void SegmentsRunOneAfterTheOtherEqualTheWholeChainExactly(int depth, string balance)
    {
        var f = new NonConvexWorstCase(9, 4);
        var chain = f.ToChain(depth);
        var theta = RandomPoint(9, 3);
        var expectedGradient = new double[9];
        var expectedValue = chain.ValueAndGradient(theta, expectedGradient);

        // What ranks do: each runs its segment forward and hands the vector on, then backward in reverse.
        var segments = chain.Segments(Partition.ByBalance(depth, Partition.ParseBalance(balance)));
        var tapes = segments.Select(s => s.NewTape()).ToArray();
        double[] activation = theta;
        for (var s = 0; s < segments.Count; s++)
        {
            var output = new double[segments[s].OutputDimension];
            segments[s].Forward(activation, output, tapes[s]);
            activation = output;
        }

        double[] gradient = [1.0];
        for (var s = segments.Count - 1; s >= 0; s--)
        {
            var inputGradient = new double[segments[s].InputDimension];
            segments[s].Backward(tapes[s], gradient, inputGradient);
            gradient = inputGradient;
        }

        Assert.That(activation.Single(), Is.EqualTo(expectedValue));
        Assert.That(gradient, Is.EqualTo(expectedGradient));
    }

    [Test]
    public void TimeUnitFormulas()
    {
        Assert.That(TimeUnits.PipelinedEvaluation(1, 1), Is.EqualTo(2));
        Assert.That(TimeUnits.PipelinedEvaluation(1, 20), Is.EqualTo(40)); // GD/AGD: 2 Delta
        Assert.That(TimeUnits.PipelinedEvaluation(8, 5), Is.EqualTo(24)); // 2 (8 + 5 - 1)
        Assert.That(TimeUnits.SequentialEvaluation(8, 5), Is.EqualTo(80));
        Assert.That(TimeUnits.PipelinedRun(10, 8, 5), Is.EqualTo(240));
        Assert.That(TimeUnits.IterationsWithin(100, 1, 20), Is.EqualTo(2));
        Assert.Throws<InputException>(() => TimeUnits.PipelinedEvaluation(0, 3));
    }

    [Test, Combinatorial]
    public void TheOracleClockCountsTwoTimesKPlusDeltaMinusOnePerCall([Values(1, 2, 5, 20)] int depth, [Values(1, 2, 7)] int samples)
    {
        var f = new SmoothConvexWorstCase(5, 2, 1);
        var oracle = f.ToOracle(depth);
        var points = RandomPoint(5 * samples, 11);
        var values = new double[samples];
        var gradients = new double[5 * samples];
        for (var call = 1; call <= 3; call++)
        {
            oracle.Evaluate(points, samples, values, gradients);
            // The makespan of the node operations the oracle performed...
            Assert.That(oracle.LastCallTimeUnits, Is.EqualTo(TimeUnits.PipelinedEvaluation(samples, depth)));
            // ...equals the pipeline code's simulation of GPipe with unit-time stages...
            var ones = Enumerable.Repeat(1.0, depth).ToArray();
            Assert.That(oracle.LastCallTimeUnits, Is.EqualTo(PipelineTiming.SimulatedTime(Schedule.GPipe(depth, samples), ones, ones)));
            // ...and every node ran one forward and one backward per micro-batch: 2 K Delta operations.
            Assert.That(oracle.ElapsedTimeUnits, Is.EqualTo(call * 2L * (samples + depth - 1)));
            Assert.That(oracle.ForwardOperations + oracle.BackwardOperations, Is.EqualTo(call * TimeUnits.SequentialEvaluation(samples, depth)));
            Assert.That(Enumerable.Range(0, depth).Select(oracle.ForwardOperationsOf), Is.All.EqualTo(call * samples));
            Assert.That(Enumerable.Range(0, depth).Select(oracle.BackwardOperationsOf), Is.All.EqualTo(call * samples));
        }

        // Monitoring is off the clock.
        oracle.Monitor(points.AsSpan(0, 5));
        Assert.That(oracle.ElapsedTimeUnits, Is.EqualTo(3 * 2L * (samples + depth - 1)));
    }

    [Test]
    public void TheOracleReturnsEachPointsValueAndGradient()
    {
        var f = new NonConvexWorstCase(7, 3);
        var oracle = f.ToOracle(4);
        var points = RandomPoint(21, 5);
        var values = new double[3];
        var gradients = new double[21];
        oracle.Evaluate(points, 3, values, gradients);
        for (var k = 0; k < 3; k++)
        {
            var p = points.AsSpan(7 * k, 7).ToArray();
            Assert.That(values[k], Is.EqualTo(f.Value(p)).Within(1e-12));
            Assert.That(gradients.AsSpan(7 * k, 7).ToArray(), Is.EqualTo(ClosedFormGradient(f, p)).Within(1e-12));
        }
    }
}
