using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.Tests.Training;

/// <summary>The divergence guard's decision (stop, skip, limit), what one rank sees, and its message; the agreement
/// between ranks is the rank tests' (DivergenceTests).</summary>
[TestFixture]
internal sealed class NonFiniteGuardTests
{
    private static readonly NonFiniteValue NanLoss = new(1, double.NaN, double.NaN);

    [Test]
    public void FiniteStepsApplyAndLeaveNoTrace()
    {
        var guard = new NonFiniteGuard(NonFinitePolicy.Stop, 10);
        Assert.That(Enumerable.Range(0, 5).All(t => guard.Decide(t, null)), Is.True);
        Assert.That(guard.Diverged, Is.Null);
        Assert.That(guard.SkippedSteps, Is.Empty);
    }

    [Test]
    public void StopEndsTheRunAtTheFirstNonFiniteStep()
    {
        var guard = new NonFiniteGuard(NonFinitePolicy.Stop, 10);
        Assert.That(guard.Decide(0, null), Is.True);
        Assert.That(guard.Decide(4, NanLoss), Is.False, "no update at the diverged step");
        Assert.That(guard.Diverged, Is.EqualTo(new Divergence(5, NanLoss, 0)), "steps counted from 1");
        Assert.That(guard.SkippedSteps, Is.Empty);
        Assert.Throws<InvalidOperationException>(() => guard.Decide(5, null), "no step after a divergence");
    }

    [Test]
    public void SkipStepDropsUpToTheLimitThenStops()
    {
        var guard = new NonFiniteGuard(NonFinitePolicy.SkipStep, 2);
        Assert.That(guard.Decide(1, NanLoss), Is.False);
        Assert.That(guard.Skipped(1), Is.True);
        Assert.That(guard.Decide(2, null), Is.True);
        Assert.That(guard.Skipped(2), Is.False);
        Assert.That(guard.Decide(3, NanLoss), Is.False);
        Assert.That(guard.Diverged, Is.Null, "two skips are allowed");
        Assert.That(guard.SkippedSteps, Is.EqualTo(new long[] { 2, 4 }));

        Assert.That(guard.Decide(6, NanLoss), Is.False);
        Assert.That(guard.Diverged, Is.EqualTo(new Divergence(7, NanLoss, 2)));
    }

    [Test]
    public void ALimitOfZeroSkipsNothing()
    {
        var guard = new NonFiniteGuard(NonFinitePolicy.SkipStep, 0);
        Assert.That(guard.Decide(0, NanLoss), Is.False);
        Assert.That(guard.Diverged!.Step, Is.EqualTo(1));
    }

    [Test]
    public void WhatOneRankSees()
    {
        float[] fine = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        Assert.That(NonFiniteValue.Of(0, new LossResult(2.3f, 1, 8), fine), Is.Null);

        var nanLoss = NonFiniteValue.Of(3, new LossResult(float.NaN, 0, 8), fine)!.Value;
        Assert.That((nanLoss.Rank, nanLoss.Quantity, nanLoss.LossIsBad), Is.EqualTo((3, "loss", true)));
        Assert.That(nanLoss.GradientNorm, Is.EqualTo(Math.Sqrt(506)).Within(1e-9));

        // A non-finite element anywhere, the vectorized part or the tail, makes the norm infinite or NaN.
        foreach (var at in new[] { 0, fine.Length - 1 })
        {
            var bad = (float[])fine.Clone();
            bad[at] = float.PositiveInfinity;
            var seen = NonFiniteValue.Of(0, new LossResult(2.3f, 1, 8), bad)!.Value;
            Assert.That((seen.Quantity, seen.Value), Is.EqualTo(("gradient norm", double.PositiveInfinity)));
        }

        // No loss on this rank (a pipeline's inner stage: Count 0): its loss field is not looked at.
        Assert.That(NonFiniteValue.Of(0, new LossResult(float.NaN, 0, 0), fine), Is.Null);

        // Large finite gradients: squares summed in double, no float overflow to infinity.
        Assert.That(NonFiniteValue.Of(0, new LossResult(1, 0, 8), Enumerable.Repeat(1e30f, 1001).ToArray()), Is.Null);
    }

    [Test]
    public void SquaredNormIsTheSumOfSquares()
    {
        var random = new Random(7);
        var values = Enumerable.Range(0, 1037).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
        var expected = values.Sum(v => (double)v * v);
        Assert.That(NonFiniteValue.SquaredNorm(values), Is.EqualTo(expected).Within(1e-9 * expected));
    }

    [Test]
    public void TheMessageNamesStepValueRankAndTheLearningRate()
    {
        var options = new TrainOptions { LearningRate = 1e6 };
        var message = new Divergence(12, new NonFiniteValue(1, double.PositiveInfinity, double.NaN), 0).Describe(options);
        Assert.That(message, Does.StartWith("training diverged at step 12: the loss is Infinity on rank 1 (gradient norm NaN)."));
        Assert.That(message, Does.Contain("learning rate too high").And.Contain("--lr (got 1000000; e.g. --lr 100000)"));

        var skipped = new Divergence(7, new NonFiniteValue(0, null, double.NaN), 3).Describe(options with { OnNonFinite = NonFinitePolicy.SkipStep, SkippedStepsLimit = 3 });
        Assert.That(skipped, Does.Contain("the gradient norm is NaN on rank 0 (no loss on that rank); 3 earlier step(s)").And.Contain("--max-skipped-steps 3"));
    }

    [Test]
    public void TheTestHookParsesRankStepPairs()
    {
        Assert.That(NonFiniteGuard.ParsePoison(null), Is.Null);
        Assert.That(NonFiniteGuard.ParsePoison("1:3,0:4"), Is.EquivalentTo(new[] { (1, 3L), (0, 4L) }));
        Assert.Throws<InputException>(() => NonFiniteGuard.ParsePoison("1:0"));
        Assert.Throws<InputException>(() => NonFiniteGuard.ParsePoison("x"));
    }

    [Test]
    public void SkipLimitNeedsSkipStepAndIsAtLeastZero()
    {
        var options = new TrainOptions { Model = "mlp" };
        Assert.That(Assert.Throws<InputException>(() => (options with { SkippedStepsLimit = 3 }).Validate(1))!.Message,
            Is.EqualTo("--max-skipped-steps applies with --on-nonfinite skip-step only"));
        Assert.That(Assert.Throws<InputException>(() => (options with { OnNonFinite = NonFinitePolicy.SkipStep, SkippedStepsLimit = -1 }).Validate(1))!.Message,
            Does.StartWith("--max-skipped-steps must be >= 0"));
        Assert.DoesNotThrow(() => (options with { OnNonFinite = NonFinitePolicy.SkipStep, SkippedStepsLimit = 0 }).Validate(1));
    }
}
