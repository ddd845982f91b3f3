using MpiPipeline.Torch;

namespace MpiPipeline.Tests.Torch;

/// <summary>
/// Device-resident gradients on a CPU stage with separate host mirrors (MPIPIPE_FORCE_STAGING): the host mirror sees
/// backward's gradients only through the range copies, and the copies move exactly the range asked for.
/// </summary>
public sealed class StagingTests
{
    [Test]
    public void RangeCopiesMoveExactlyTheirRangeBetweenTheFlatGradientsAndTheHostMirror()
    {
        using var stage = Stage.Create([new("linear", 4, 3)], [4], seed: 5, separateHostMirrors: true);
        Assert.That(stage.SeparateHostMirrors, Is.True);
        float[] x = [1, -2, 3, 0.5f, 0, 1, -1, 2];
        stage.ForwardLossBackward(x, 2, [2, 0], 1f, []);
        var device = stage.DeviceGradients.ToArray();
        Assert.That(device.Count(g => g != 0), Is.GreaterThan(10), "backward wrote the flat gradients");
        Assert.That(stage.Gradients.ToArray(), Is.All.EqualTo(0f), "the host mirror is separate memory, untouched by backward");

        // Weight [3 x 4] then bias [3]: copy elements 5..13 only.
        stage.WaitCopy(stage.CopyGradients(toDevice: false, 5, 9));
        var host = stage.Gradients.ToArray();
        for (var i = 0; i < host.Length; i++)
        {
            Assert.That(host[i], Is.EqualTo(i is >= 5 and < 14 ? device[i] : 0f), $"element {i}");
        }

        stage.Gradients[7] = 42f;
        stage.Gradients[0] = -1f;   // outside the range copied back
        stage.WaitCopy(stage.CopyGradients(toDevice: true, 6, 2));
        stage.Synchronize();
        var after = stage.DeviceGradients.ToArray();
        Assert.That(after[7], Is.EqualTo(42f));
        Assert.That(after[0], Is.EqualTo(device[0]));
        Assert.That(after.Where((_, i) => i != 7), Is.EqualTo(device.Where((_, i) => i != 7)));

        stage.ScaleGradients(0.5f);
        Assert.That(stage.DeviceGradients[1], Is.EqualTo(device[1] * 0.5f));
    }

    [Test]
    public void ACopyOutsideTheFlatBufferIsRefusedWithItsRange()
    {
        using var stage = Stage.Create([new("linear", 4, 3)], [4], separateHostMirrors: true);
        var ex = Assert.Throws<TorchException>(() => stage.CopyGradients(toDevice: false, 10, 6))!;
        Assert.That(ex.Message, Does.Contain("[10, 16) is outside the flat buffer of 15"));
    }

    [Test]
    public void WithoutSeparateMirrorsTheHostMirrorIsTheFlatBufferItself()
    {
        using var stage = Stage.Create([new("linear", 4, 3)], [4], seed: 5);
        Assert.That(stage.SeparateHostMirrors, Is.False);
        stage.ForwardLossBackward([1, -2, 3, 0.5f], 1, [1], 1f, []);
        Assert.That(stage.Gradients.ToArray(), Is.EqualTo(stage.DeviceGradients.ToArray()).And.Some.Not.EqualTo(0f));
    }
}
