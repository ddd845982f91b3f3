using MpiPipeline.Cli.Verbs;
using MpiPipeline.Mpi;
using MpiPipeline.Scaling;

namespace MpiPipeline.Tests.Scaling;

/// <summary>Bad sweeps are one clear message before anything runs.</summary>
[TestFixture]
public sealed class ScalingOptionsTests
{
    [Test]
    public void DefaultsAreValid() => Assert.DoesNotThrow(() => new ScalingOptions().Validate());

    private static string Refused(ScalingOptions options) => Assert.Throws<InputException>(options.Validate)!.Message;

    [Test]
    public void RefusesWhatCannotRun()
    {
        var o = new ScalingOptions();
        Assert.That(Refused(o with { Ranks = [1, 3], GlobalBatch = 256 }), Does.Contain("--global-batch 256 must be divisible by every rank count; it is not by 3"));
        Assert.That(Refused(o with { Ranks = [2, 2] }), Does.Contain("twice"));
        Assert.That(Refused(o with { Ranks = [0, 2] }), Does.Contain(">= 1"));
        Assert.That(Refused(o with { Algorithm = "single" }), Does.Contain("cannot be swept"));
        Assert.That(Refused(o with { Steps = 5, WarmupSteps = 5 }), Does.Contain("warmup < steps"));
        Assert.That(Refused(o with { Steps = 300, GlobalBatch = 256 }), Does.Contain("more than one epoch"));
        Assert.That(Refused(o with { Steps = 300, GlobalBatch = 256, TrainArguments = ["--dataset=fashion-mnist"] }), Does.Contain("more than one epoch"));
        Assert.That(() => (o with { Steps = 300, GlobalBatch = 256, TrainArguments = ["--dataset", "idx:/data/big"] }).Validate(), Throws.Nothing,
            "another data set's size is checked by the runs");
        Assert.That(Refused(o with { TrainArguments = ["--device", "cuda", "--batch=64"] }), Does.Contain("must not set --batch"));
        Assert.That(Refused(o with { BenchRanks = [1] }), Does.Contain(">= 2"));
        Assert.That(Refused(o with { ProjectRanks = [16, 30] }), Does.Contain("--project 30"));
        Assert.That(Refused(o with { AssumedNetwork = (1e-6, 0) }), Does.Contain("--assume-network"));
    }

    [Test]
    public void WeakScalingNeedsNoDivisibleGlobalBatch() =>
        Assert.DoesNotThrow(() => new ScalingOptions { Ranks = [1, 3], GlobalBatch = 255, Modes = [ScalingMode.Weak] }.Validate());

    [Test]
    public void ListsParse()
    {
        Assert.That(ScalingVerb.ParseIntList("1,2, 4 8", "--ranks"), Is.EqualTo(new[] { 1, 2, 4, 8 }));
        Assert.That(Assert.Throws<InputException>(() => ScalingVerb.ParseIntList("1,x", "--ranks"))!.Message, Does.Contain("'x' is not an integer"));
        Assert.That(Assert.Throws<InputException>(() => ScalingVerb.ParseIntList(" ", "--ranks"))!.Message, Does.Contain("empty"));
    }

    [Test]
    public void BenchmarkSizeCoversTheGradientOnTheGrid()
    {
        Assert.That(ScalingSweep.BenchMaxBytes(814_120), Is.EqualTo(2L << 20), "8 B x 4^k: 512 KiB < 814 kB <= 2 MiB");
        Assert.That(ScalingSweep.BenchMaxBytes(0), Is.EqualTo(128L << 10), "at least 64 KiB, on the grid");
        Assert.That(ScalingSweep.BenchMaxBytes(1L << 40), Is.EqualTo(32L << 20), "at most 64 MiB, on the grid");
    }
}
