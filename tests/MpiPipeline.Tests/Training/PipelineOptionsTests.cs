using MpiPipeline.Mpi;
using MpiPipeline.Pipeline;
using MpiPipeline.Training;

namespace MpiPipeline.Tests.Training;

/// <summary>The checks of <c>--algo pipeline</c>'s options: the grid, the micro-batches, the balance's form.</summary>
[TestFixture]
internal sealed class PipelineOptionsTests
{
    private static TrainOptions Pipeline(int batch = 64) => new() { Algorithm = "pipeline", Model = "mlp", Batch = batch };

    [TestCase(null, null, 4, 4, 1)]
    [TestCase(2, null, 4, 2, 2)]
    [TestCase(null, 2, 4, 2, 2)]
    [TestCase(3, 1, 3, 3, 1)]
    [TestCase(1, 4, 4, 1, 4)]
    public void GridShapeFollowsFromTheGivenSide(int? stages, int? replicas, int world, int expectedStages, int expectedReplicas)
    {
        var options = Pipeline() with { Stages = stages, Replicas = replicas };
        Assert.That(options.GridShape(world), Is.EqualTo((expectedStages, expectedReplicas)));
        Assert.DoesNotThrow(() => options.Validate(world));
    }

    [TestCase(3, null, 4, "the job has 4 ranks and --stages 3 does not divide the world size")]
    [TestCase(2, 3, 4, "--stages 2 x --data-parallel 3 = 6 ranks")]
    [TestCase(null, 3, 4, "--data-parallel 3 does not divide the world size")]
    [TestCase(0, null, 4, "--stages must be >= 1")]
    public void GridThatDoesNotFillTheWorldIsRejected(int? stages, int? replicas, int world, string message)
    {
        var options = Pipeline() with { Stages = stages, Replicas = replicas };
        var error = Assert.Throws<InputException>(() => options.Validate(world))!;
        Assert.That(error.Message, Does.Contain(message));
        Assert.That(error.SameOnEveryRank, Is.True);
    }

    [Test]
    public void MicroBatchesMustCutEachReplicasBatchEvenly()
    {
        var error = Assert.Throws<InputException>(() => (Pipeline(48) with { Stages = 2, Replicas = 2, MicroBatches = 5 }).Validate(4))!;
        Assert.That(error.Message, Does.Contain("--micro-batches 5 does not divide the per-replica batch 24"));
        Assert.DoesNotThrow(() => (Pipeline(48) with { Stages = 2, Replicas = 2, MicroBatches = 8 }).Validate(4));
        Assert.Throws<InputException>(() => (Pipeline(50) with { Stages = 1, Replicas = 4, MicroBatches = 1 }).Validate(4));
    }

    [Test]
    public void BalanceNeedsOneCountPerStage()
    {
        var error = Assert.Throws<InputException>(() => (Pipeline() with { Balance = "2,2" }).Validate(3))!;
        Assert.That(error.Message, Does.Contain("--balance 2,2 gives 2 stages but the pipeline has S = 3"));
        Assert.Throws<InputException>(() => (Pipeline() with { Balance = "2,x,1" }).Validate(3));
        Assert.Throws<InputException>(() => (Pipeline() with { Balance = "2,1,1", PartitionBy = PartitionCost.Time }).Validate(3));
    }

    [Test]
    public void PipelineOptionsBelongToThePipeline()
    {
        var error = Assert.Throws<InputException>(() => new TrainOptions { Algorithm = "psgd", Batch = 64, Stages = 2 }.Validate(2))!;
        Assert.That(error.Message, Is.EqualTo("--stages applies to --algo pipeline only (got --algo psgd)"));
        var tau = Assert.Throws<InputException>(() => (Pipeline() with { Tau = 4 }).Validate(2))!;
        Assert.That(tau.Message, Is.EqualTo("--tau applies to --algo local-sgd, ri-sgd only (got --algo pipeline)"));
        var split = Assert.Throws<InputException>(() => (Pipeline() with { Split = DataSplit.Chunks }).Validate(2))!;
        Assert.That(split.Message, Does.StartWith("--split applies to --algo single, psgd, local-sgd, ri-sgd only"));
    }

    [Test]
    public void ThrowAtHookParses()
    {
        Assert.That(MpiPipeline.Engines.PipelineEngine.ParseThrowAt(null), Is.Null);
        Assert.That(MpiPipeline.Engines.PipelineEngine.ParseThrowAt("2:3"), Is.EqualTo((2, 3L)));
        Assert.Throws<InputException>(() => MpiPipeline.Engines.PipelineEngine.ParseThrowAt("two"));
    }
}
