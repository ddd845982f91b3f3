namespace MpiPipeline.Data;

/// <summary>
/// Deterministic shuffles and seeds. Every random choice in a run derives from the user's seed and where it is made
/// (epoch, rank, step), through <see cref="Derive"/>, so runs repeat exactly and ranks never share a stream by accident.
/// </summary>
internal static class Shuffle
{
    // Distinct tags keep the derived streams apart: Permutation(seed, epoch 3) and SeedFor(seed, rank 3, ...) differ.
    private const ulong EpochTag = 0x45504F4348; // "EPOCH"
    private const ulong RankStepTag = 0x52414E4B; // "RANK"

    /// <summary>
    /// The order in which epoch <paramref name="epoch"/> visits samples 0..count-1: a Fisher-Yates shuffle driven by
    /// <see cref="SplitMix64"/> seeded from (seed, epoch). The same arguments give the same order everywhere.
    /// </summary>
    public static int[] Permutation(int count, long seed, int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var order = new int[count];
        for (var i = 0; i < count; i++)
        {
            order[i] = i;
        }

        Permute(order, DeriveTagged(seed, EpochTag, epoch));
        return order;
    }

    /// <summary>Fisher-Yates (Durstenfeld): for i from n-1 down to 1, swap item i with item j, j uniform in [0, i].</summary>
    public static void Permute<T>(Span<T> items, ulong seed)
    {
        var random = new SplitMix64(seed);
        for (var i = items.Length - 1; i > 0; i--)
        {
            var j = random.NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>The seed for what rank <paramref name="rank"/> draws at step <paramref name="step"/> (dropout, sampling).</summary>
    public static long SeedFor(long seed, int rank, long step) => (long)DeriveTagged(seed, RankStepTag, rank, step);

    /// <summary>
    /// Hashes a seed and a sequence of integers into a new seed: h = Mix(seed), then h = Mix(h ^ Mix(part + gamma))
    /// for each part, with <see cref="SplitMix64.Mix"/> and the golden gamma. Order matters: (1, 2) != (2, 1).
    /// </summary>
    public static ulong Derive(long seed, params ReadOnlySpan<long> parts)
    {
        var hash = SplitMix64.Mix((ulong)seed);
        foreach (var part in parts)
        {
            hash = SplitMix64.Mix(hash ^ SplitMix64.Mix((ulong)part + SplitMix64.GoldenGamma));
        }

        return hash;
    }

    /// <summary><see cref="Derive"/> of (tag, parts...): a tag names the purpose, so streams for different purposes differ.</summary>
    public static ulong DeriveTagged(long seed, ulong tag, params ReadOnlySpan<long> parts)
    {
        Span<long> tagged = stackalloc long[parts.Length + 1];
        tagged[0] = (long)tag;
        parts.CopyTo(tagged[1..]);
        return Derive(seed, tagged);
    }
}
