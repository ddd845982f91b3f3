global using static MpiPipeline.Tests.TestGeometry;
using MpiPipeline.Data;
using MpiPipeline.Torch;

namespace MpiPipeline.Tests;

/// <summary>The geometry most tests build models for: Fashion-MNIST's, as its data source states it.</summary>
internal static class TestGeometry
{
    public static int[] FashionMnistShape => FashionMnist.SampleShape;

    public static SampleGeometry FashionMnistGeometry => new(FashionMnist.SampleShape, FashionMnist.Classes);
}
