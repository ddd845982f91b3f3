namespace MpiPipeline.Data;

/// <summary>
/// SplitMix64 (Steele, Lea, Flood 2014; the reference is Vigna's splitmix64.c): a 64-bit state advanced by the golden
/// gamma 0x9E3779B97F4A7C15, each output the state passed through the <see cref="Mix"/> finalizer. Written out here so
/// that shuffles and seeds are the same on every .NET version and every machine - System.Random promises neither.
/// </summary>
internal struct SplitMix64(ulong seed)
{
    public const ulong GoldenGamma = 0x9E3779B97F4A7C15;

    private ulong state = seed;

    public ulong NextUInt64()
    {
        state += GoldenGamma;
        return Mix(state);
    }

    /// <summary>
    /// A uniform integer in [0, <paramref name="bound"/>), without bias: Lemire's multiply-shift (2019) - the high
    /// 64 bits of x * bound - rejecting the few x whose low 64 bits fall below 2^64 mod bound.
    /// </summary>
    public int NextInt(int bound)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bound, 1);
        var range = (ulong)bound;
        var threshold = (0UL - range) % range;
        while (true)
        {
            var high = Math.BigMul(NextUInt64(), range, out var low);
            if (low >= threshold)
            {
                return (int)high;
            }
        }
    }

    /// <summary>The SplitMix64 output function (Stafford's "Mix13"), a bijection that scatters every input bit.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
