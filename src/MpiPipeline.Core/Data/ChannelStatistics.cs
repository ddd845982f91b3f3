using System.Globalization;

namespace MpiPipeline.Data;

/// <summary>
/// The normalization of a data set read from files: per channel c, x' = (x - mean_c) / std_c with the mean and the
/// (population) standard deviation of the training set's values, applied to the training and the test part alike.
/// A sample of shape C x H x W has C channels (the first dimension); any other shape is one channel. Unsigned bytes
/// are first scaled to [0, 1] (x / 255), so the figures read like torchvision's (CIFAR-10: mean 0.4914, 0.4822,
/// 0.4465). A channel whose values are all equal has std 0: it is only centred (std taken as 1).
/// </summary>
internal sealed class ChannelStatistics
{
    private ChannelStatistics(double[] mean, double[] std, bool bytes, int planeSize)
    {
        Mean = mean;
        Std = std;
        FromBytes = bytes;
        PlaneSize = planeSize;
    }

    /// <summary>Per channel, in the units after scaling (x / 255 for bytes).</summary>
    public IReadOnlyList<double> Mean { get; }

    public IReadOnlyList<double> Std { get; }

    /// <summary>True when the values were unsigned bytes, scaled by 1 / 255 before the statistics.</summary>
    public bool FromBytes { get; }

    /// <summary>Consecutive values of one channel within a sample.</summary>
    private int PlaneSize { get; }

    /// <summary>(channels, values per channel) of a sample of <paramref name="sampleShape"/>.</summary>
    public static (int Channels, int PlaneSize) Layout(ReadOnlySpan<int> sampleShape)
    {
        var size = 1;
        foreach (var dimension in sampleShape)
        {
            size *= dimension;
        }

        return sampleShape.Length == 3 ? (sampleShape[0], size / sampleShape[0]) : (1, size);
    }

    /// <summary>The statistics of unsigned-byte samples, exactly, from one histogram per channel.</summary>
    public static ChannelStatistics Of(ReadOnlySpan<byte> values, ReadOnlySpan<int> sampleShape)
    {
        var (channels, plane) = Layout(sampleShape);
        var histogram = new long[channels * 256];
        var sampleSize = channels * plane;
        for (var start = 0; start + sampleSize <= values.Length; start += sampleSize)
        {
            for (var c = 0; c < channels; c++)
            {
                var counts = histogram.AsSpan(c * 256, 256);
                foreach (var value in values.Slice(start + c * plane, plane))
                {
                    counts[value]++;
                }
            }
        }

        var mean = new double[channels];
        var std = new double[channels];
        for (var c = 0; c < channels; c++)
        {
            var counts = histogram.AsSpan(c * 256, 256);
            double n = 0, sum = 0;
            for (var v = 0; v < 256; v++)
            {
                n += counts[v];
                sum += counts[v] * (v / 255.0);
            }

            mean[c] = sum / n;
            var squares = 0.0;
            for (var v = 0; v < 256; v++)
            {
                var d = v / 255.0 - mean[c];
                squares += counts[v] * d * d;
            }

            std[c] = Math.Sqrt(squares / n);
        }

        return new ChannelStatistics(mean, std, bytes: true, plane);
    }

    /// <summary>The statistics of real-valued samples (two passes in double precision).</summary>
    public static ChannelStatistics Of(ReadOnlySpan<float> values, ReadOnlySpan<int> sampleShape)
    {
        var (channels, plane) = Layout(sampleShape);
        var sampleSize = channels * plane;
        var samples = values.Length / sampleSize;
        var mean = new double[channels];
        var std = new double[channels];
        for (var c = 0; c < channels; c++)
        {
            var sum = 0.0;
            for (var s = 0; s < samples; s++)
            {
                foreach (var value in values.Slice(s * sampleSize + c * plane, plane))
                {
                    sum += value;
                }
            }

            mean[c] = sum / ((double)samples * plane);
            var squares = 0.0;
            for (var s = 0; s < samples; s++)
            {
                foreach (var value in values.Slice(s * sampleSize + c * plane, plane))
                {
                    var d = value - mean[c];
                    squares += d * d;
                }
            }

            std[c] = Math.Sqrt(squares / ((double)samples * plane));
        }

        return new ChannelStatistics(mean, std, bytes: false, plane);
    }

    /// <summary>Normalized floats of unsigned-byte samples (one 256-entry table per channel).</summary>
    public float[] Apply(ReadOnlySpan<byte> values)
    {
        var channels = Mean.Count;
        var tables = new float[channels * 256];
        for (var c = 0; c < channels; c++)
        {
            for (var v = 0; v < 256; v++)
            {
                tables[c * 256 + v] = (float)((v / 255.0 - Mean[c]) / Divisor(c));
            }
        }

        var result = GC.AllocateUninitializedArray<float>(values.Length);
        for (var i = 0; i < values.Length; i++)
        {
            result[i] = tables[i / PlaneSize % channels * 256 + values[i]];
        }

        return result;
    }

    /// <summary>Normalizes real-valued samples in place.</summary>
    public void ApplyInPlace(Span<float> values)
    {
        var channels = Mean.Count;
        for (var i = 0; i < values.Length; i++)
        {
            var c = i / PlaneSize % channels;
            values[i] = (float)((values[i] - Mean[c]) / Divisor(c));
        }
    }

    /// <summary>What the run header says, e.g. "per channel (x / 255 - mean) / std, mean 0.4914, 0.4822, 0.4465, std ... (training set)".</summary>
    public string Describe()
    {
        var x = FromBytes ? "x / 255" : "x";
        var scope = Mean.Count > 1 ? "per channel " : "";
        return $"{scope}({x} - mean) / std with the training set's mean {Format(Mean)}, std {Format(Std)}";
    }

    private double Divisor(int channel) => Std[channel] > 0 ? Std[channel] : 1;

    private static string Format(IReadOnlyList<double> values) =>
        string.Join(", ", values.Select(v => v.ToString("0.####", CultureInfo.InvariantCulture)));
}
