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
        var compressor = (exchange as ICompressingExchange)?.Compressor;
        var c = exchange.Counters;
        described["compress"] = compressor?.Spec ?? "none";
        described["compressionRatio"] = c.Coordinates > 0 ? c.CompressionRatio.ToString("R", CultureInfo.InvariantCulture) : "";
        described["bitsPerCoordinate"] = c.Coordinates > 0 ? c.BitsPerCoordinate.ToString("R", CultureInfo.InvariantCulture) : "";
    }

    /// <summary>One line: the compressor, its ratio over fp32, bits per coordinate and bytes per step (this rank's).</summary>
    public static IReadOnlyList<string> Notes(IGradientExchange exchange)
    {
        if (exchange is not ICompressingExchange { Compressor: { } compressor } || exchange.Counters.Rounds == 0)
        {
            return [];
        }

        var c = exchange.Counters;
        var sizeWords = exchange is OverlappedAllreduceExchange { Buckets.Count: var count } ? count : 1;
        var wire = exchange is OverlappedAllreduceExchange
            ? $"per bucket ({sizeWords}) overlapped with backward: Iallgather of the size, Iallgatherv of the payload"
            : "Allgatherv of the payloads, whole buffer after backward";
        var alternative = compressor is ILevelCodeComparison levels
            ? string.Create(CultureInfo.InvariantCulture, $"; per-coordinate Elias-gamma levels would take {8.0 * (levels.PerCoordinateCodeBytes + (c.Rounds * sizeWords * sizeof(int))) / c.Coordinates:F3}")
            : "";
        return [string.Create(CultureInfo.InvariantCulture,
            $"gradients compressed with {compressor.Spec}: {c.CompressionRatio:F1}x fewer bytes than fp32, {c.BitsPerCoordinate:F3} bits per coordinate " +
            $"({(double)c.PayloadBytes / c.Rounds:F0} bytes handed to MPI per step, this rank; {wire}{alternative})")];
    }
}
