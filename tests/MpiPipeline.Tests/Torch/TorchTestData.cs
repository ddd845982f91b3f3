using MpiPipeline.Torch;

namespace MpiPipeline.Tests.Torch;

/// <summary>Deterministic inputs and the comparisons the bridge tests share.</summary>
internal static class TorchTestData
{
    public static float[] Uniform(int count, int seed, float scale = 1f)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (var i = 0; i < count; i++)
        {
            values[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        }

        return values;
    }

    public static int[] Labels(int count, int classes, int seed)
    {
        var random = new Random(seed);
        var labels = new int[count];
        for (var i = 0; i < count; i++)
        {
            labels[i] = random.Next(classes);
        }

        return labels;
    }

    public static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, double tolerance, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: lengths differ");
        for (var i = 0; i < actual.Length; i++)
        {
            var bound = tolerance * Math.Max(1, Math.Abs(expected[i]));
            if (Math.Abs(actual[i] - expected[i]) > bound)
            {
                Assert.Fail($"{what}[{i}] = {actual[i]:R}, expected {expected[i]:R} (tolerance {bound:G3})");
            }
        }
    }

    public static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double tolerance, string what)
    {
        var wide = new double[expected.Length];
        for (var i = 0; i < wide.Length; i++)
        {
            wide[i] = expected[i];
        }

        AssertClose(actual, wide, tolerance, what);
    }

    /// <summary>A stage over <paramref name="layers"/> whose parameters are copied from <paramref name="source"/>'s flat buffer at <paramref name="offset"/>.</summary>
    public static Stage SliceOf(Stage source, IReadOnlyList<LayerSpec> layers, int[] sampleShape, ref int offset)
    {
        var stage = Stage.Create(layers, sampleShape, seed: 999);
        source.Parameters.Slice(offset, (int)stage.ParameterCount).CopyTo(stage.Parameters);
        offset += (int)stage.ParameterCount;
        return stage;
    }
}
