using MpiPipeline.Data;

namespace MpiPipeline.Dicod;

/// <summary>
/// The synthetic problem, as the paper's experiments draw it: K atoms of P x L Gaussian entries, each normalised to
/// ||D_k||_2 = 1; activations Z_k[t] non-zero with probability rho (Bernoulli-Gaussian, amplitude N(0, 1) scaled by
/// <see cref="Amplitude"/>); X = sum_k Z_k * D_k + sigma N(0, I). Every value comes from SplitMix64 streams keyed by
/// (seed, stream), drawn in one fixed order over the whole signal: every rank draws the same problem whatever the
/// number of ranks, and so does a one-rank run.
/// </summary>
internal static class SyntheticCsc
{
    /// <summary>The scale of the activations' Gaussian amplitudes.</summary>
    public const double Amplitude = 10.0;

    private const ulong DictionaryStream = 1, ActivationStream = 2, NoiseStream = 3;

    /// <summary>D: K x P x L, each atom of unit l2 norm.</summary>
    public static double[] Dictionary(int atoms, int channels, int atomLength, ulong seed)
    {
        var random = new Gaussian(Stream(seed, DictionaryStream));
        var d = new double[atoms * channels * atomLength];
        var size = channels * atomLength;
        for (var k = 0; k < atoms; k++)
        {
            var atom = d.AsSpan(k * size, size);
            for (var i = 0; i < size; i++)
            {
                atom[i] = random.Next();
            }

            var norm = Math.Sqrt(CscProblem.Dot(atom, atom));
            for (var i = 0; i < size; i++)
            {
                atom[i] /= norm;
            }
        }

        return d;
    }

    /// <summary>
    /// X = sum_k Z_k * D_k + sigma N(0, I) for Bernoulli(rho)-Gaussian activations drawn from (seed, stream 2); returns
    /// the signal (P x T) and the activations that made it (K x (T - L + 1)).
    /// </summary>
    public static (double[] Signal, double[] Activations) Signal(
        double[] dictionary, int atoms, int channels, int atomLength, int length, double density, double noise, ulong seed)
    {
        var n = length - atomLength + 1;
        var z = new double[atoms * n];
        var draw = new Gaussian(Stream(seed, ActivationStream));
        for (var i = 0; i < z.Length; i++)
        {
            // Two draws per coordinate, whatever the outcome: the stream stays aligned with the coordinates.
            var on = draw.Uniform() < density;
            var amplitude = draw.Next();
            z[i] = on ? Amplitude * amplitude : 0.0;
        }

        var clean = new CscProblem(atoms, atomLength, channels, length, 0.0, new double[channels * length], dictionary);
        var x = clean.Residual(z);
        var noiseDraw = new Gaussian(Stream(seed, NoiseStream));
        for (var i = 0; i < x.Length; i++)
        {
            // Residual of a zero signal is -sum Z * D: flip it, add the noise.
            x[i] = -x[i] + (noise * noiseDraw.Next());
        }

        return (x, z);
    }

    private static ulong Stream(ulong seed, ulong stream) => SplitMix64.Mix(seed ^ (stream * SplitMix64.GoldenGamma));

    /// <summary>Standard normal draws by Box-Muller over SplitMix64's 53-bit uniforms.</summary>
    private struct Gaussian(ulong seed)
    {
        private SplitMix64 bits = new(seed);
        private double spare;
        private bool hasSpare;

        public double Uniform() => (bits.NextUInt64() >> 11) * (1.0 / (1UL << 53));

        public double Next()
        {
            if (hasSpare)
            {
                hasSpare = false;
                return spare;
            }

            var u = 1.0 - Uniform();
            var v = Uniform();
            var radius = Math.Sqrt(-2.0 * Math.Log(u));
            spare = radius * Math.Sin(2.0 * Math.PI * v);
            hasSpare = true;
            return radius * Math.Cos(2.0 * Math.PI * v);
        }
    }
}
