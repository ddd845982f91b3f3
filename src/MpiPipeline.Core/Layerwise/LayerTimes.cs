using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MpiPipeline.Telemetry;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.Layerwise;

/// <summary>The compute time of one layer's shard per training step: one forward and one backward of <c>batch</c>
/// samples, and for a shard with parameters the zeroing of its gradients and its optimizer step.</summary>
internal interface ILayerTimes
{
    /// <param name="inputGradient">Whether the backward computes the input's gradient: every layer but the first (the
    /// engine asks none of layer 0, whose input is the data; for a conv that is a large part of its backward).</param>
    double Seconds(LayerSpec layer, int[] sampleInputShape, int batch, bool inputGradient = true);

    /// <summary>Seconds per byte of the engine's block copies around a transfer (<see cref="Transfer.Local"/>).</summary>
    double CopySecondsPerByte { get; }
}

/// <summary>
/// What one rank computes of a layer under a configuration: the layer with 1/Channel of its output channels
/// (features), on Batch/Sample samples of its input with 1/Height of the rows. A height-split conv is timed on the rows
/// the engine's stage gets, its halo included (the busiest rank's), with the copies that crop its own rows out
/// (<see cref="CropBytes"/>); other height shards with their own rows. The first layer's shard computes no input
/// gradient, as in the engine.
/// </summary>
internal sealed record ComputeShard(LayerSpec Layer, int[] InputShape, int Batch, bool InputGradient = true)
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

        var cropBytes = 0L;
        if (input.Length == 3)
        {
            input[1] = Math.Max(1, input[1] / config.Height);
            if (spec.Kind == "conv2d" && config.Height > 1)
            {
                // The engine's stage runs on the rows the rank needs, its halo included, and crops its own rows out of
                // the output (forward a copy, backward a clear and a copy): the busiest rank's (two halos in the middle).
                var planned = new PlannedLayer(node.Index, spec, ActivationShape.Of(node.InputShape), ActivationShape.Of(node.OutputShape), config);
                var ranks = Enumerable.Range(0, config.Ranks);
                input[1] = ranks.Max(r => LayerGeometry.InputBlock(planned, batch, r).Rows);
                cropBytes = ranks.Max(r => LayerGeometry.StageRows(planned, batch, r).Rows * LayerGeometry.OutputBlock(planned, batch, r).Elements(planned.Output.Columns)
                    / Math.Max(1, LayerGeometry.OutputBlock(planned, batch, r).Rows)) * 3 * TransferCosts.BytesPerElement;
            }
        }

        return new ComputeShard(layer, input, batch / config.Sample, InputGradient: node.Index > 0) { CropBytes = cropBytes };
    }

    public string Key => $"{Layer}|in {SampleGeometry.Format(InputShape)}|batch {Batch}{(InputGradient ? "" : "|no input gradient")}";

    /// <summary>Bytes the engine copies to crop a height-split conv's own rows out of its stage's output, forward and backward (0 otherwise).</summary>
    public long CropBytes { get; init; }
}

/// <summary>
/// Layer times measured on this machine through the bridge: a one-layer <see cref="Stage"/>, <see cref="WarmUps"/> warm-ups, then the
/// median of <see cref="Runs"/> training steps of it as the layer-wise engine runs them (zero the gradients, forward,
/// backward, an SGD step with train's default momentum: the per-parameter work is a real part of a step, and it differs
/// between plans, a channel split updating 1/c of the parameters); cached in a JSON file keyed by the shard (layer, input
/// shape, batch), libtorch's threads, the bridge ABI and the libtorch version, so a plan on the same machine measures
/// each shard once. <see cref="Save"/> writes the new entries (AtomicFile).
/// </summary>
internal sealed class MeasuredLayerTimes : ILayerTimes
{
    public const int Runs = 9;

    public const int WarmUps = 2;

    private readonly string path;
    private readonly string environment;
    private readonly Func<LayerSpec, int[], int, bool, double> measure;
    private readonly Func<double> measureCopy;
    private readonly SortedDictionary<string, double> entries;
    private bool changed;

    /// <param name="path">The cache file (<see cref="DefaultPath"/> by default); a missing file is an empty cache.</param>
    /// <param name="environment">What else the times depend on: threads, bridge ABI, libtorch (<see cref="Environment"/>).</param>
    /// <param name="measure">How a shard is timed (tests inject one; default <see cref="Measure"/> with <paramref name="concurrent"/> copies at once).</param>
    /// <param name="concurrent">How many ranks compute each shard at the same moment on this machine (<see cref="Concurrent"/>); part of <paramref name="environment"/>.</param>
    /// <param name="measureCopy">How the copy rate is timed (tests inject one; default <see cref="MeasureCopy"/>).</param>
    public MeasuredLayerTimes(string path, string environment, Func<LayerSpec, int[], int, bool, double>? measure = null, int concurrent = 1,
        Func<double>? measureCopy = null)
    {
        this.measureCopy = measureCopy ?? (() => MeasureCopy(concurrent));
        this.path = path;
        this.environment = environment;
        this.measure = measure ?? ((layer, shape, batch, inputGradient) => Measure(layer, shape, batch, inputGradient, concurrent));
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

    /// <summary>The part of the key that is this process's: libtorch threads, how many copies run at once
    /// (<see cref="Concurrent"/>), bridge ABI, libtorch version.</summary>
    public static string Environment(int threads, int concurrent = 1) =>
        string.Create(CultureInfo.InvariantCulture, $"threads {threads}|concurrent {concurrent}|bridge {TorchRuntime.BridgeVersion}|libtorch {TorchRuntime.LibtorchVersion}|{What}");

    /// <summary>How many of <paramref name="ranks"/> ranks of <paramref name="threads"/> threads each compute at the same
    /// moment on this machine's cores: each is measured with that many copies stepping at once.</summary>
    public static int Concurrent(int ranks, int threads) => Math.Clamp(System.Environment.ProcessorCount / Math.Max(1, threads), 1, Math.Max(1, ranks));

    /// <summary>What a measurement times (in the key: times of an older measurement, without the update, on constant data or with warm caches, are not reused).</summary>
    private const string What = "step with guard and sgd update|random data|cold cache";

    public double Seconds(LayerSpec layer, int[] sampleInputShape, int batch, bool inputGradient = true)
    {
        var key = $"{new ComputeShard(layer, sampleInputShape, batch, inputGradient).Key}|{environment}";
        if (!entries.TryGetValue(key, out var seconds))
        {
            seconds = measure(layer, sampleInputShape, batch, inputGradient);
            entries[key] = seconds;
            changed = true;
            Measured++;
        }

        return seconds;
    }

    /// <summary>Measured once per environment like a shard (<see cref="MeasureCopy"/>), cached under <see cref="CopyKey"/>.</summary>
    public double CopySecondsPerByte
    {
        get
        {
            var key = $"{CopyKey}|{environment}";
            if (!entries.TryGetValue(key, out var seconds))
            {
                seconds = measureCopy();
                entries[key] = seconds;
                changed = true;
                Measured++;
            }

            return seconds;
        }
    }

    private const string CopyKey = "block copy, cold, seconds per byte";

    public void Save()
    {
        if (changed)
        {
            AtomicFile.WriteAllText(path, JsonSerializer.Serialize(new CacheFile(entries), new JsonSerializerOptions { WriteIndented = true }) + "\n");
            changed = false;
        }
    }

    /// <summary>
    /// Times one step of the layer on the CPU: zeroed gradients, forward, backward (the input gradient when
    /// <paramref name="inputGradient"/>: an inner layer passes it on), the guard's pass over its gradients and the
    /// optimizer's update of its parameters (SGD with momentum, train's default), the caches flushed before each step.
    /// The input and the output gradient are seeded pseudo-random values shaped like the engine's activations
    /// (<c>FillLikeActivations</c>), not a constant. <see cref="WarmUps"/> steps first (the first touches of the buffers
    /// and the momentum buffer's allocation), then the median of about <c>MeasureSeconds</c> of steps (<see cref="Runs"/>
    /// to <c>MaxRuns</c>), timed on the calling thread while <paramref name="concurrent"/> - 1 other threads step copies
    /// of their own.
    /// </summary>
    public static double Measure(LayerSpec layer, int[] sampleInputShape, int batch, bool inputGradient = true, int concurrent = 1)
    {
        // The engine's ranks run the same shard at the same moment and share the memory bandwidth and caches: each of
        // `concurrent` threads steps its own copy, the threads starting each step together. The run count comes from
        // the last warm-up (thread 0's): enough steps for about MeasureSeconds, so a short layer's median is over
        // many steps and one time slice lost to another process moves it little.
        concurrent = Math.Max(1, concurrent);
        if (concurrent > 1)
        {
            MainArena.Use();
        }

        var runs = new double[concurrent][];
        var count = Runs;
        using var start = new Barrier(concurrent);
        Exception? failure = null;
        void Steps(int k)
        {
            ShardStep? step = null;
            try
            {
                step = new ShardStep(layer, sampleInputShape, batch, inputGradient);
            }
            catch (Exception error)
            {
                failure ??= error;
            }

            var last = 0.0;
            for (var run = 0; run < WarmUps; run++)
            {
                start.SignalAndWait();
                last = step is not null && failure is null ? step.Run() : 0;
            }

            if (k == 0)
            {
                count = last > 0 ? Math.Clamp((int)(MeasureSeconds / last), Runs, MaxRuns) : Runs;
            }

            start.SignalAndWait();
            runs[k] = new double[count];
            for (var run = 0; run < count; run++)
            {
                start.SignalAndWait();
                runs[k][run] = step is not null && failure is null ? step.Run() : 0;
            }

            step?.Dispose();
        }

        // The calling thread's steps are the ones timed: a rank computes on its main thread, in glibc's main arena; the
        // other threads are the other ranks' load.
        var others = Enumerable.Range(1, concurrent - 1).Select(k => new Thread(() => Steps(k))).ToList();
        others.ForEach(t => t.Start());
        Steps(0);
        others.ForEach(t => t.Join());
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }

        var times = runs[0].Order().ToArray();
        return times[count / 2];
    }

    /// <summary>
    /// Seconds per byte of copying a 4 MiB block of floats (the size of the zoo's larger activations) with
    /// <paramref name="concurrent"/> threads copying at once, the caches flushed before each copy as before a layer's
    /// step (the engine's transfers read activations the layers wrote and gradients written a pass earlier): the median
    /// of 21 copies.
    /// </summary>
    public static double MeasureCopy(int concurrent = 1)
    {
        const int Floats = 1 << 20, Copies = 21;
        concurrent = Math.Max(1, concurrent);
        var times = new double[concurrent][];
        using var start = new Barrier(concurrent);
        void Copy(int k)
        {
            var source = new float[Floats];
            var target = new float[Floats];
            var flush = new byte[FlushBytes];
            Array.Fill(source, 1f);
            times[k] = new double[Copies];
            for (var run = -2; run < Copies; run++)
            {
                flush.AsSpan().Fill((byte)run);
                start.SignalAndWait();
                var clock = Stopwatch.GetTimestamp();
                source.AsSpan().CopyTo(target);
                if (run >= 0)
                {
                    times[k][run] = Stopwatch.GetElapsedTime(clock).TotalSeconds;
                }
            }
        }

        var threads = Enumerable.Range(0, concurrent).Select(k => new Thread(() => Copy(k))).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        var means = Enumerable.Range(0, Copies).Select(run => times.Average(t => t[run])).Order().ToArray();
        return means[Copies / 2] / (Floats * sizeof(float));
    }

    /// <summary>About how long the timed steps of one shard take together (at least <see cref="Runs"/>, at most <see cref="MaxRuns"/> steps).</summary>
    private const double MeasureSeconds = 0.06;

    private const int MaxRuns = 40;

    /// <summary>Past this machine's last-level cache (an EPYC's is 16 to 32 MiB per core complex).</summary>
    private const int FlushBytes = 32 << 20;

    /// <summary>One shard's training step on its own stage, with seeded pseudo-random data (see <see cref="Measure"/>).</summary>
    private sealed class ShardStep : IDisposable
    {
        private readonly Stage stage;
        private readonly Optimizer? optimizer;
        private readonly float[] input, output, outputGradient, inputGradient;
        private readonly int batch;
        private readonly bool wantsInputGradient;
        private readonly byte[] flush = new byte[FlushBytes];
        private byte flushes;
        private double guardNorm;



        public ShardStep(LayerSpec layer, int[] sampleInputShape, int batch, bool inputGradient)
        {
            stage = Stage.Create([layer], sampleInputShape);
            optimizer = stage.ParameterCount > 0 ? Optimizer.Sgd(stage, 1e-6, TrainDefaultMomentum) : null;
            this.batch = batch;
            wantsInputGradient = inputGradient;
            var random = new Random(1);
            input = new float[batch * stage.SampleInputSize];
            FillLikeActivations(input, sampleInputShape, random);

            output = new float[batch * stage.SampleOutputSize];
            outputGradient = new float[output.Length];
            for (var i = 0; i < outputGradient.Length; i++)
            {
                outputGradient[i] = (float)(random.NextDouble() - 0.5) / output.Length;
            }

            this.inputGradient = inputGradient ? new float[input.Length] : [];
        }

        /// <summary>
        /// Values shaped like the activations the zoo's layers read: a ReLU's output, half of it zeros; on an image,
        /// half of the 2x2 cells are zero throughout (the images' plain background stays plain through the convs). A
        /// max-pool's comparisons depend on it: on constant data they always go the same way (it ran at half its time
        /// in the engine), on values without ties they go either way (40% over its time in the engine).
        /// </summary>
        private static void FillLikeActivations(float[] values, int[] sampleShape, Random random)
        {
            var (rows, columns) = sampleShape.Length == 3 ? (sampleShape[1], sampleShape[2]) : (1, values.Length);
            var plane = rows * columns;
            var cells = new bool[((rows + 1) / 2) * ((columns + 1) / 2)];
            for (var p = 0; p < values.Length / plane; p++)
            {
                for (var c = 0; c < cells.Length; c++)
                {
                    cells[c] = sampleShape.Length == 3 && random.NextDouble() < 0.5;
                }

                for (var i = 0; i < plane; i++)
                {
                    var cell = ((i / columns) / 2 * ((columns + 1) / 2)) + ((i % columns) / 2);
                    values[(p * plane) + i] = cells[cell] ? 0 : (float)Math.Max(0, random.NextDouble() - 0.5);
                }
            }
        }

        /// <summary>Zeroed gradients, forward, backward, the guard's norm of the gradients, the optimizer's step: seconds.</summary>
        public double Run()
        {
            // The engine steps every layer of the model in turn, both ranks' activations, gradients and weights together
            // far past the caches, so a layer finds its weights and saved activations in memory; a shard stepped over and
            // over would find them in the cache (the cnn's layers measured 15% faster that way). Writing a buffer past
            // the last-level cache before each step evicts them.
            flush.AsSpan().Fill(++flushes);

            var start = Stopwatch.GetTimestamp();
            stage.ZeroGradients();
            stage.Forward(0, input, batch, output, requireInputGradient: wantsInputGradient);
            stage.Backward(0, outputGradient, inputGradient);
            if (optimizer is not null)
            {
                // The divergence guard's pass over the shard's gradients, as the engine makes it every step.
                guardNorm += NonFiniteValue.SquaredNorm(stage.Gradients);
                optimizer.Step();
            }

            return Stopwatch.GetElapsedTime(start).TotalSeconds;
        }

        public void Dispose()
        {
            optimizer?.Dispose();
            stage.Dispose();
        }
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

/// <summary>
/// Keeps the measuring threads' allocations in glibc's main arena (M_ARENA_MAX 1) where that still takes, as a rank's
/// single compute thread has them: a thread in an arena of its own, whose heaps hold at most 64 MiB, gave the 25 MB
/// gradient of cnn-wide's linear layer back to the system after each step and faulted it in again (35 or 80 ms from
/// one run to the next; 37 ms in the engine). Arenas the runtime's threads made before stay in use, which is why only
/// the calling thread's steps are timed. Process-wide and once; without glibc nothing is done.
/// </summary>
internal static partial class MainArena
{
    private const int ArenaMax = -8;   // M_ARENA_MAX, malloc.h
    private static int done;

    public static void Use()
    {
        if (!OperatingSystem.IsLinux() || Interlocked.Exchange(ref done, 1) == 1 || System.Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX") is not null)
        {
            return;
        }

        try
        {
            _ = mallopt(ArenaMax, 1);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc: its allocator is left as it is.
        }
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int mallopt(int parameter, int value);
}
