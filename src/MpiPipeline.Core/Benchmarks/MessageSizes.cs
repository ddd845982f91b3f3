using System.Globalization;

namespace MpiPipeline.Benchmarks;

/// <summary>Message sizes in bytes: parsing ("8", "64K", "64KiB", "4M", "1GiB"), the size list of a sweep, and labels.</summary>
internal static class MessageSizes
{
    /// <summary>The largest message a sweep may ask for (MPI counts are ints; 1 GiB keeps byte counts well inside).</summary>
    public const long Largest = 1L << 30;

    /// <summary>The smallest: one float, so that Allreduce has an element to reduce.</summary>
    public const long Smallest = 4;

    /// <summary>Parses a byte count with an optional binary suffix: K/KiB, M/MiB, G/GiB (case-insensitive), or B.</summary>
    public static bool TryParse(string? text, out long bytes, out string error)
    {
        bytes = 0;
        error = "";
        var s = (text ?? "").Trim();
        var digits = 0;
        while (digits < s.Length && char.IsAsciiDigit(s[digits]))
        {
            digits++;
        }

        var multiplier = s[digits..].ToUpperInvariant() switch
        {
            "" or "B" => 1L,
            "K" or "KB" or "KIB" => 1L << 10,
            "M" or "MB" or "MIB" => 1L << 20,
            "G" or "GB" or "GIB" => 1L << 30,
            _ => 0L,
        };
        if (digits == 0 || multiplier == 0 || !long.TryParse(s[..digits], NumberStyles.None, CultureInfo.InvariantCulture, out var count))
        {
            error = $"'{text}' is not a message size (a byte count, optionally with K, KiB, M, MiB, G or GiB)";
            return false;
        }

        if (count > Largest / multiplier)
        {
            error = $"'{text}' is larger than the largest message, {Label(Largest)}";
            return false;
        }

        bytes = count * multiplier;
        return true;
    }

    /// <summary>
    /// The sizes of a sweep: <paramref name="min"/>, min*factor, min*factor^2, ... up to and including
    /// <paramref name="max"/> when it falls on that grid. Both ends must be powers of two between
    /// <see cref="Smallest"/> and <see cref="Largest"/>, and factor a power of two of at least 2.
    /// </summary>
    public static IReadOnlyList<long> Sweep(long min, long max, int factor)
    {
        if (SweepError(min, max, factor) is { } error)
        {
            throw new ArgumentException(error);
        }

        var sizes = new List<long>();
        for (var size = min; size <= max; size *= factor)
        {
            sizes.Add(size);
        }

        return sizes;
    }

    /// <summary>Why <see cref="Sweep"/> would refuse these bounds, or null when it accepts them.</summary>
    public static string? SweepError(long min, long max, int factor)
    {
        if (!IsPowerOfTwo(min) || min < Smallest || min > Largest)
        {
            return $"the smallest size ({min} B) must be a power of two from {Label(Smallest)} to {Label(Largest)}";
        }

        if (!IsPowerOfTwo(max) || max > Largest)
        {
            return $"the largest size ({max} B) must be a power of two up to {Label(Largest)}";
        }

        if (max < min)
        {
            return $"the largest size ({Label(max)}) is below the smallest ({Label(min)})";
        }

        if (factor < 2 || !IsPowerOfTwo(factor))
        {
            return $"the step between sizes ({factor}) must be a power of two, 2 or more";
        }

        return null;
    }

    /// <summary>"8 B", "64 KiB", "64 MiB": exact binary units for powers of two, bytes otherwise.</summary>
    public static string Label(long bytes) => bytes switch
    {
        >= 1L << 30 when bytes % (1L << 30) == 0 => $"{bytes >> 30} GiB",
        >= 1L << 20 when bytes % (1L << 20) == 0 => $"{bytes >> 20} MiB",
        >= 1L << 10 when bytes % (1L << 10) == 0 => $"{bytes >> 10} KiB",
        _ => $"{bytes} B",
    };

    private static bool IsPowerOfTwo(long value) => value > 0 && (value & (value - 1)) == 0;
}
