using MpiPipeline.Mpi;
using MpiPipeline.Training;

namespace MpiPipeline.Tests.Training;

/// <summary>--train-loss-every belongs to the engines that evaluate one (average) model, and counts steps.</summary>
[TestFixture]
public sealed class TrainLossOptionTests
{
    [Test]
    public void ThePipelineRefusesIt()
    {
        var ex = Assert.Throws<InputException>(() => new TrainOptions { Algorithm = "pipeline", TrainLossEvery = 5 }.Validate(2))!;
        Assert.That(ex.Message, Is.EqualTo("--train-loss-every applies to --algo single, psgd, local-sgd, ri-sgd only (got --algo pipeline)"));
    }

    [Test]
    public void ZeroStepsIsRefused()
    {
        var ex = Assert.Throws<InputException>(() => new TrainOptions { Algorithm = "ri-sgd", TrainLossEvery = 0 }.Validate(2))!;
        Assert.That(ex.Message, Is.EqualTo("--train-loss-every must be >= 1 (got 0)"));
    }

    [Test]
    public void EveryDataParallelAlgorithmTakesIt()
    {
        foreach (var algorithm in new[] { "psgd", "local-sgd", "ri-sgd" })
        {
            Assert.DoesNotThrow(() => new TrainOptions { Algorithm = algorithm, TrainLossEvery = 3, Split = DataSplit.ChunksByClass }.Validate(2), algorithm);
        }
    }
}
