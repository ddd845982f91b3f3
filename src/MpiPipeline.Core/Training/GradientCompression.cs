using System.Globalization;
using MpiPipeline.Exchange;
using MpiPipeline.Exchange.Compression;

namespace MpiPipeline.Training;

/// <summary>What <c>--compress</c> did, for the results and the end-of-run report (this rank's counters).</summary>
internal static class GradientCompression
{
    /// <summary>The results' options: the compressor spelled out, the compression ratio over fp32 and the bits per coordinate.</summary>
    public static void Describe(IDictionary<string, string> described, IGradientExchange exchange)
    {
        var compressed = exchange as CompressedExchange;
        var c = exchange.Counters;
        described["compress"] = compressed?.Compressor.Spec ?? "none";
        described["compressionRatio"] = c.Coordinates > 0 ? c.CompressionRatio.ToString("R", CultureInfo.InvariantCulture) : "";
        described["bitsPerCoordinate"] = c.Coordinates > 0 ? c.BitsPerCoordinate.ToString("R", CultureInfo.InvariantCulture) : "";
    }

    /// <summary>One line: the compressor, its ratio over fp32, bits per coordinate and bytes per step (this rank's).</summary>
    public static IReadOnlyList<string> Notes(IGradientExchange exchange)
    {
        if (exchange is not CompressedExchange compressed || compressed.Counters.Rounds == 0)
        {
            return [];
        }

        var c = compressed.Counters;
        var alternative = compressed.Compressor is ILevelCodeComparison levels
            ? string.Create(CultureInfo.InvariantCulture, $"; per-coordinate Elias-gamma levels would take {8.0 * (levels.PerCoordinateCodeBytes + (c.Rounds * sizeof(int))) / c.Coordinates:F3}")
            : "";
        return [string.Create(CultureInfo.InvariantCulture,
            $"gradients compressed with {compressed.Compressor.Spec}: {c.CompressionRatio:F1}x fewer bytes than fp32, {c.BitsPerCoordinate:F3} bits per coordinate " +
            $"({(double)c.PayloadBytes / c.Rounds:F0} bytes handed to MPI per step, this rank; Allgatherv of the payloads, whole buffer after backward{alternative})")];
    }
}
