using MathNet.Numerics.Distributions;
using MathNet.Numerics.Random;
using MpiPipeline.Data;

namespace MpiPipeline.Smoothing;

/// <summary>
/// The perturbations X_k ~ N(0, I_d) of PPRS, as a pure function of (seed, iteration t, sample k): the stream of X_k
/// is seeded by <see cref="Shuffle.DeriveTagged"/>(seed, "PPRS", t, k), drawn by MathNet's <see cref="Normal"/>
/// sampler from the project's <see cref="SplitMix64"/>. Whoever builds the perturbed copies theta + gamma X_k - this
/// process, or the first stage of a pipeline over MPI ranks - gets the same X_k, so a pipelined run repeats a one-rank
/// run exactly. Independent of how f is evaluated.
/// </summary>
internal static class GaussianPerturbation
{
    private const ulong PprsTag = 0x50505253; // "PPRS"

    /// <summary>The seed of X_k at iteration t.</summary>
    public static ulong SeedOf(long seed, long iteration, int sample) => Shuffle.DeriveTagged(seed, PprsTag, iteration, sample);

    /// <summary>x = X_k at iteration t: x.Length independent standard normal values.</summary>
    public static void Draw(long seed, long iteration, int sample, Span<double> x)
    {
        var values = new double[x.Length];
        Normal.Samples(new SplitMix64Source(SeedOf(seed, iteration, sample)), values, 0, 1);
        values.CopyTo(x);
    }

    /// <summary>points[k d .. (k+1) d) = theta + gamma X_k for k = 0 .. K-1: the K perturbed copies of one iteration.</summary>
    public static void PerturbedCopies(ReadOnlySpan<double> theta, double gamma, int samples, long seed, long iteration, Span<double> points)
    {
        var d = theta.Length;
        if (points.Length != samples * d)
        {
            throw new ArgumentException($"{samples} copies of a point in R^{d} need {samples * d} values, not {points.Length}", nameof(points));
        }

        for (var k = 0; k < samples; k++)
        {
            var copy = points.Slice(k * d, d);
            Draw(seed, iteration, k, copy); // X_k
            for (var i = 0; i < d; i++)
            {
                copy[i] = theta[i] + gamma * copy[i]; // theta + gamma X_k
            }
        }
    }

    /// <summary>A MathNet random source over <see cref="SplitMix64"/>: uniform doubles in [0, 1) from the top 53 bits.</summary>
    private sealed class SplitMix64Source(ulong seed) : RandomSource(false)
    {
        private SplitMix64 generator = new(seed);

        protected override double DoSample() => (generator.NextUInt64() >> 11) * (1.0 / (1UL << 53));

        protected override int DoSampleInteger() => (int)(generator.NextUInt64() >> 33);
    }
}
