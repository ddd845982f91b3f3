using MpiPipeline.Smoothing;

namespace MpiPipeline.Tests.Smoothing;

/// <summary>Random points and finite differences for the smoothing tests.</summary>
internal static class SmoothingTestHelpers
{
    /// <summary>A point with coordinates uniform in [-scale, scale], from a fixed seed.</summary>
    public static double[] RandomPoint(int dimension, int seed, double scale = 1.5)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, dimension).Select(_ => scale * (2 * random.NextDouble() - 1)).ToArray();
    }

    /// <summary>The central difference (f(x + h e_i) - f(x - h e_i)) / 2h for every i.</summary>
    public static double[] CentralDifferences(Func<double[], double> f, double[] x, double h)
    {
        var result = new double[x.Length];
        for (var i = 0; i < x.Length; i++)
        {
            var plus = (double[])x.Clone();
            var minus = (double[])x.Clone();
            plus[i] += h;
            minus[i] -= h;
            result[i] = (f(plus) - f(minus)) / (2 * h);
        }

        return result;
    }

    /// <summary>The chain's gradient at x.</summary>
    public static double[] ChainGradient(Chain chain, double[] x)
    {
        var g = new double[x.Length];
        chain.ValueAndGradient(x, g);
        return g;
    }

    /// <summary>The closed-form gradient at x.</summary>
    public static double[] ClosedFormGradient(WorstCaseFunction f, double[] x)
    {
        var g = new double[x.Length];
        f.Gradient(x, g);
        return g;
    }
}
