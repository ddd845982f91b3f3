using MpiPipeline.Training;

namespace MpiPipeline.Tests.Training;

/// <summary>--no-overlap and --bucket-mb: owned by the algorithms that average gradients, a bucket size that is a size.</summary>
[TestFixture]
internal sealed class OverlapOptionsTests
{
    [TestCase("psgd", 2)]
    [TestCase("pipeline", 4)]
    public void GradientAveragingAlgorithmsTakeThem(string algorithm, int world)
    {
        var options = new TrainOptions { Algorithm = algorithm, Model = "mlp", Batch = 64, NoOverlap = true, BucketMegabytes = 0.25 };
        Assert.DoesNotThrow(() => options.Validate(world));
        Assert.That(options.EffectiveBucketMegabytes, Is.EqualTo(0.25));
        Assert.That(new TrainOptions().EffectiveBucketMegabytes, Is.EqualTo(25), "DDP's default");
    }

    [TestCase("local-sgd")]
    [TestCase("ri-sgd")]
    public void ModelAveragingAlgorithmsRejectThem(string algorithm)
    {
        var noOverlap = new TrainOptions { Algorithm = algorithm, Model = "mlp", Batch = 64, NoOverlap = true };
        Assert.That(Assert.Throws<InputException>(() => noOverlap.Validate(2))!.Message, Does.StartWith("--no-overlap applies to --algo"));
        var bucket = new TrainOptions { Algorithm = algorithm, Model = "mlp", Batch = 64, BucketMegabytes = 1 };
        Assert.That(Assert.Throws<InputException>(() => bucket.Validate(2))!.Message, Does.StartWith("--bucket-mb applies to --algo"));
    }

    [TestCase(0)]
    [TestCase(-2)]
    public void BucketSizeThatIsNotPositiveIsOneClearMessage(double megabytes)
    {
        var options = new TrainOptions { Algorithm = "psgd", Model = "mlp", Batch = 64, BucketMegabytes = megabytes };
        var error = Assert.Throws<InputException>(() => options.Validate(2))!;
        Assert.That(error.Message, Does.StartWith($"--bucket-mb must be a positive number of megabytes (got {megabytes})"));
        Assert.That(error.SameOnEveryRank, Is.True);
    }

    [TestCase("callbacks", false)]
    [TestCase("thread", null)]
    [TestCase(null, null)]
    public void ProgressSettingPicksTheThreadOnlyWhereMpiAllowsIt(string? setting, bool? expected)
    {
        Assert.That(GradientOverlap.UseProgressThread(setting), Is.EqualTo(expected ?? MpiPipeline.Mpi.MpiEnvironment.ThreadMultiple));
    }

    [Test]
    public void AnotherProgressSettingIsOneClearError() =>
        Assert.That(Assert.Throws<InputException>(() => GradientOverlap.UseProgressThread("always"))!.Message,
            Is.EqualTo("MPIPIPE_OVERLAP_PROGRESS must be 'thread' or 'callbacks' (got 'always')"));
}
