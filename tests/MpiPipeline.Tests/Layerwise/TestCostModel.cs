using MpiPipeline.Layerwise;
using MpiPipeline.Torch;

namespace MpiPipeline.Tests.Layerwise;

/// <summary>
/// The cost model the layer-wise tests search and price: a zoo model on Fashion-MNIST's samples, a global batch of
/// <see cref="Batch"/> unless given, shared memory unless another network is, and <see cref="FakeTimes"/> for the
/// layers (no measuring).
/// </summary>
internal static class TestCostModel
{
    public const int Batch = 128;

    public static LayerwiseCostModel Of(string model, int ranks, LayerwiseNetwork? network = null, int batch = Batch) =>
        new(LayerNode.Of(model, FashionMnistGeometry), batch, ranks, new FakeTimes(), network ?? LayerwiseNetwork.SharedMemory);

    /// <summary>Layer times proportional to the shard's multiply-adds (and its values, for the cheap layers), plus a per-shard jitter, so equal splits are not exact ties.</summary>
    internal sealed class FakeTimes : ILayerTimes
    {
        /// <summary>10 GB/s.</summary>
        public double CopySecondsPerByte => 1e-10;

        public double Seconds(LayerSpec layer, int[] sampleInputShape, int batch, bool inputGradient = true)
        {
            var values = (double)batch * sampleInputShape.Aggregate(1L, (p, d) => p * d);
            var work = layer.Kind switch
            {
                "linear" => batch * (double)layer.Args[0] * layer.Args[1],
                "conv2d" => values * layer.Args[1] * layer.Args[2] * layer.Args[2],
                _ => values,
            };
            var jitter = 1 + 0.01 * (Math.Abs(HashCode.Combine(layer.ToString(), string.Join("x", sampleInputShape), batch)) % 100) / 100;
            return (20e-6 + work * 1e-9) * jitter;
        }
    }
}
