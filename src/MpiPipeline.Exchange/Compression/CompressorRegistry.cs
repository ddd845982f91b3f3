using System.Globalization;
using MpiPipeline.Mpi;

namespace MpiPipeline.Exchange.Compression;

/// <summary>A compressor by name: its usage, one-line help and factory over its arguments (null: none given).</summary>
public sealed record CompressorRegistration(string Name, string Usage, string Help, Func<string?, CompressorContext, IGradientCompressor?> Create);

/// <summary>The compressors <c>--compress</c> accepts; a new one is a class plus one line here.</summary>
public static class CompressorRegistry
{
    public const string Flag = "--compress";

    public const string None = "none";

    public static IReadOnlyList<CompressorRegistration> All { get; } =
    [
        new(None, None, "dense fp32 (no compression)", (arguments, _) => arguments is null ? null : throw Usage(None, arguments, "takes no arguments")),
        Fp16Compressor.Registration,
        TopKCompressor.Registration,
        QsgdCompressor.Registration,
        EcqCompressor.Registration,
    ];

    public static string Help => string.Join(" | ", All.Select(c => $"{c.Usage} ({c.Help})"));

    /// <summary>The compressor <paramref name="spec"/> names, for this rank; null for <c>none</c>.</summary>
    public static IGradientCompressor? Create(string spec, CompressorContext context)
    {
        var colon = spec.IndexOf(':', StringComparison.Ordinal);
        var (name, arguments) = colon < 0 ? (spec, null) : (spec[..colon], spec[(colon + 1)..]);
        var registration = All.FirstOrDefault(c => c.Name == name)
            ?? throw new InputException($"unknown {Flag} '{spec}'; known: {Help}");
        return registration.Create(arguments, context);
    }

    /// <summary>Throws the usage error <paramref name="spec"/> would give, before any work.</summary>
    public static void Validate(string spec) => Create(spec, new CompressorContext(0, 0));

    public static bool IsNone(string spec) => spec == None;

    internal static InputException Usage(string usage, string? arguments, string why) =>
        new($"{Flag} {usage}: {why} (got '{arguments}')");

    /// <summary>The comma-separated numbers of <paramref name="arguments"/>, between one and <paramref name="most"/> of them.</summary>
    internal static double[] Numbers(string usage, string? arguments, int most)
    {
        if (string.IsNullOrEmpty(arguments))
        {
            throw Usage(usage, arguments, "needs its arguments");
        }

        var parts = arguments.Split(',');
        if (parts.Length > most)
        {
            throw Usage(usage, arguments, $"takes at most {most} numbers");
        }

        var numbers = new double[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out numbers[i]) || !double.IsFinite(numbers[i]))
            {
                throw Usage(usage, arguments, $"'{parts[i]}' is not a number");
            }
        }

        return numbers;
    }

    /// <summary>A whole number in [<paramref name="min"/>, <paramref name="max"/>], or the usage error naming it.</summary>
    internal static int Whole(string usage, string? arguments, string what, double value, int min, int max)
    {
        if (value != Math.Floor(value) || value < min || value > max)
        {
            throw Usage(usage, arguments, $"{what} must be a whole number in [{min}, {max}]");
        }

        return (int)value;
    }
}
