using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MpiPipeline.Telemetry;
using MpiPipeline.Torch;

namespace MpiPipeline.Layerwise;

/// <summary>The compute time of one layer's shard per training step: one forward and one backward of <c>batch</c>
/// samples, and for a shard with parameters the zeroing of its gradients and its optimizer step.</summary>
internal interface ILayerTimes
{
    double Seconds(LayerSpec layer, int[] sampleInputShape, int batch);
}

/// <summary>
/// What one rank computes of a layer under a configuration: the layer with 1/Channel of its output channels
/// (features), on Batch/Sample samples of its input with 1/Height of the rows. A height shard is timed with the
/// layer's own padding in place of its halo rows: the same output rows, the same work.
/// </summary>
internal sealed record ComputeShard(LayerSpec Layer, int[] InputShape, int Batch)
{
    public static ComputeShard Of(LayerNode node, LayerConfig config, int batch)
    {
        var spec = node.Spec;
        var c = config.Channel;
        var layer = spec.Kind switch
        {
            "linear" => spec with { Args = [spec.Args[0], spec.Args[1] / c] },
            "conv2d" => spec with { Args = [spec.Args[0], spec.Args[1] / c, .. spec.Args[2..]] },
            "batchnorm" when spec.Args.Length > 0 => spec with { Args = [spec.Args[0] / c] },
            _ => spec,
        };
        var input = (int[])node.InputShape.Clone();
        var needsAllChannels = node.Kind.Need != InputNeed.SameBlock;
        if (!needsAllChannels)
        {
            input[0] /= c;
        }

        if (input.Length == 3)
        {
            input[1] = Math.Max(1, input[1] / config.Height);
        }

        return new ComputeShard(layer, input, batch / config.Sample);
    }

    public string Key => $"{Layer}|in {SampleGeometry.Format(InputShape)}|batch {Batch}";
}

/// <summary>
/// Layer times measured on this machine through the bridge: a one-layer <see cref="Stage"/>, one warm-up, then the
/// median of <see cref="Runs"/> training steps of it as the layer-wise engine runs them (zero the gradients, forward,
/// backward, an SGD step with train's default momentum: the per-parameter work is a real part of a step, and it differs
/// between plans, a channel split updating 1/c of the parameters); cached in a JSON file keyed by the shard (layer, input
/// shape, batch), libtorch's threads, the bridge ABI and the libtorch version, so a plan on the same machine measures
/// each shard once. <see cref="Save"/> writes the new entries (AtomicFile).
/// </summary>
internal sealed class MeasuredLayerTimes : ILayerTimes
{
    public const int Runs = 5;

    private readonly string path;
    private readonly string environment;
    private readonly Func<LayerSpec, int[], int, double> measure;
    private readonly SortedDictionary<string, double> entries;
    private bool changed;

    /// <param name="path">The cache file (<see cref="DefaultPath"/> by default); a missing file is an empty cache.</param>
    /// <param name="environment">What else the times depend on: threads, bridge ABI, libtorch (<see cref="Environment"/>).</param>
    /// <param name="measure">How a shard is timed (tests inject one; default <see cref="Measure"/>).</param>
    public MeasuredLayerTimes(string path, string environment, Func<LayerSpec, int[], int, double>? measure = null)
    {
        this.path = path;
        this.environment = environment;
        this.measure = measure ?? Measure;
        entries = Load(path);
    }

    /// <summary>Shards measured by this instance (not found in the cache).</summary>
    public int Measured { get; private set; }

    /// <summary><c>$XDG_CACHE_HOME/mpipipe/layer-times.json</c>, else <c>~/.cache/mpipipe/layer-times.json</c>.</summary>
    public static string DefaultPath
    {
        get
        {
            var cache = System.Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            if (string.IsNullOrEmpty(cache))
            {
                cache = Path.Combine(System.Environment.GetFolderPath(System.Environment.SpecialFolder.UserProfile), ".cache");
            }

            return Path.Combine(cache, "mpipipe", "layer-times.json");
        }
    }

    /// <summary>The part of the key that is this process's: libtorch threads, bridge ABI, libtorch version.</summary>
    public static string Environment(int threads) =>
        string.Create(CultureInfo.InvariantCulture, $"threads {threads}|bridge {TorchRuntime.BridgeVersion}|libtorch {TorchRuntime.LibtorchVersion}|{What}");

    /// <summary>What a measurement times (in the key: times of an older measurement, without the update, are not reused).</summary>
    private const string What = "step with sgd update";

    public double Seconds(LayerSpec layer, int[] sampleInputShape, int batch)
    {
        var key = $"{new ComputeShard(layer, sampleInputShape, batch).Key}|{environment}";
        if (!entries.TryGetValue(key, out var seconds))
        {
            seconds = measure(layer, sampleInputShape, batch);
            entries[key] = seconds;
            changed = true;
            Measured++;
        }

        return seconds;
    }

    public void Save()
    {
        if (changed)
        {
            AtomicFile.WriteAllText(path, JsonSerializer.Serialize(new CacheFile(entries), new JsonSerializerOptions { WriteIndented = true }) + "\n");
            changed = false;
        }
    }

    /// <summary>Times one step of the layer on the CPU: zeroed gradients, forward, backward (input gradient included: an
    /// inner layer passes it on), the optimizer's update of its parameters (SGD with momentum, train's default).</summary>
    public static double Measure(LayerSpec layer, int[] sampleInputShape, int batch)
    {
        using var stage = Stage.Create([layer], sampleInputShape);
        using var optimizer = stage.ParameterCount > 0 ? Optimizer.Sgd(stage, 1e-6, TrainDefaultMomentum) : null;
        var input = new float[batch * stage.SampleInputSize];
        Array.Fill(input, 0.5f);
        var output = new float[batch * stage.SampleOutputSize];
        var outputGradient = new float[output.Length];
        Array.Fill(outputGradient, 1f / output.Length);
        var inputGradient = new float[input.Length];
        var times = new double[Runs];
        for (var run = -1; run < Runs; run++)
        {
            var start = Stopwatch.GetTimestamp();
            stage.ZeroGradients();
            stage.Forward(0, input, batch, output, requireInputGradient: true);
            stage.Backward(0, outputGradient, inputGradient);
            optimizer?.Step();
            if (run >= 0)
            {
                times[run] = Stopwatch.GetElapsedTime(start).TotalSeconds;
            }
        }

        Array.Sort(times);
        return times[Runs / 2];
    }

    /// <summary>train's default --momentum (the optimizer step's cost: one buffer more than plain SGD).</summary>
    private const double TrainDefaultMomentum = 0.9;

    private static SortedDictionary<string, double> Load(string path)
    {
        if (!File.Exists(path))
        {
            return new(StringComparer.Ordinal);
        }

        try
        {
            var file = JsonSerializer.Deserialize<CacheFile>(File.ReadAllText(path));
            return new(file?.Entries ?? new Dictionary<string, double>(), StringComparer.Ordinal);
        }
        catch (JsonException error)
        {
            throw new InputException($"{path}: not a layer-time cache (JSON: {error.Message}); delete it to measure again");
        }
    }

    private sealed record CacheFile(IDictionary<string, double> Entries);
}
