using MpiPipeline.Torch;

namespace MpiPipeline.Tests.Torch;

/// <summary><see cref="TorchRuntime.GatherRows"/>: the batch gather done by libtorch's index_select on its threads.</summary>
[TestFixture]
[NonParallelizable]
public sealed class GatherRowsTests
{
    [Test]
    public void CopiesTheIndexedRowsInOrder()
    {
        float[] source = [0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32];
        var destination = new float[4 * 3];
        TorchRuntime.GatherRows(source, 3, [3, 0, 3, 1], destination);
        Assert.That(destination, Is.EqualTo(new float[] { 30, 31, 32, 0, 1, 2, 30, 31, 32, 10, 11, 12 }));
    }

    /// <summary>A training batch's size, where index_select runs in parallel at 2 threads: the same bytes at 1 and 2.</summary>
    [Test]
    public void ABatchOfImagesIsTheSameAtOneAndTwoThreads()
    {
        const int rows = 1000, length = 784, batch = 128;
        var source = new float[rows * length];
        for (var i = 0; i < source.Length; i++)
        {
            source[i] = i * 0.5f;
        }

        var indices = Enumerable.Range(0, batch).Select(i => i * 7919 % rows).ToArray();
        var expected = indices.SelectMany(r => source.AsSpan(r * length, length).ToArray()).ToArray();
        var saved = TorchRuntime.Threads;
        try
        {
            foreach (var threads in new[] { 1, 2 })
            {
                TorchRuntime.Threads = threads;
                var destination = new float[batch * length];
                TorchRuntime.GatherRows(source, length, indices, destination);
                Assert.That(destination, Is.EqualTo(expected), $"{threads} threads");
            }
        }
        finally
        {
            TorchRuntime.Threads = saved;
        }
    }

    [Test]
    public void AnIndexOutsideTheSourceIsNamed()
    {
        var ex = Assert.Throws<TorchException>(() => TorchRuntime.GatherRows(new float[6], 3, [1, 2], new float[6]))!;
        Assert.That(ex.Status, Is.EqualTo(BridgeStatus.InvalidArgument));
        Assert.That(ex.Message, Does.Contain("index 2 (position 1) is outside 0..1"));
    }

    [Test]
    public void BuffersThatDoNotFitAreRefusedBeforeTheBridge()
    {
        Assert.Throws<ArgumentException>(() => TorchRuntime.GatherRows(new float[7], 3, [0], new float[3]));
        Assert.Throws<ArgumentException>(() => TorchRuntime.GatherRows(new float[6], 3, [0, 1], new float[5]));
        Assert.Throws<ArgumentOutOfRangeException>(() => TorchRuntime.GatherRows(new float[6], 0, [0], new float[3]));
    }
}
