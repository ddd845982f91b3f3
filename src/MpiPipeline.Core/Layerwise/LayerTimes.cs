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

    /// <summary>Seconds per byte of a flat block copy: the price of a height-split conv's crop copies (<see cref="ComputeShard.CropBytes"/>).</summary>
    double CopySecondsPerByte { get; }

    /// <summary>The engine's copies around a transfer's MPI calls on its busiest rank, forward and backward (pack,
    /// unpack, its own piece, the held gradient's clear and adds: <see cref="BlockTransfer.CopiesOnly"/>); by default
    /// <see cref="Transfer.MaxLocalBytes"/> at <see cref="CopySecondsPerByte"/>.</summary>
    double TransferCopySeconds(Transfer transfer) => transfer.MaxLocalBytes * CopySecondsPerByte;

    /// <summary>Called before the search asks for <see cref="Seconds"/>: <paramref name="chains"/> are whole models'
    /// shards, in layer order, as the engine would step them; an implementation that measures times each chain's
    /// shards together (<see cref="MeasuredLayerTimes"/>), others need nothing.</summary>
    void Prepare(IEnumerable<IReadOnlyList<ComputeShard>> chains)
    {
    }
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
/// Layer times measured on this machine through the bridge, as the layer-wise engine steps them: each shard a one-layer
/// <see cref="Stage"/>, a whole model's shards in a chain (<see cref="Prepare"/>): zero every gradient, forward through
/// every shard, backward through them in reverse, then for each shard with parameters the guard's pass and an SGD step
/// with train's default momentum (the per-parameter work is a real part of a step, and it differs between plans, a
/// channel split updating 1/c of the parameters). A shard's time is its mean over the chain's timed steps: the
/// engine's measured step is a mean too, and a shard stepped alone, over and over, ran faster than the same shard
/// between the model's other layers (its weights and activations stayed in the caches). Cached in a JSON file keyed by
/// the shard (layer, input shape, batch), libtorch's threads, the concurrent copies, the bridge ABI and the libtorch
/// version, so a plan on the same machine measures each shard once. <see cref="Save"/> writes the new entries (AtomicFile).
/// </summary>
internal sealed class MeasuredLayerTimes : ILayerTimes
{
    /// <summary>Timed steps of a chain: at least this many, more for a short chain (about <see cref="MeasureSeconds"/> in all).</summary>
    public const int Runs = 9;

    public const int WarmUps = 2;

    private readonly string path;
    private readonly string environment;
    private readonly Func<IReadOnlyList<ComputeShard>, double[]> measure;
    private readonly Func<double> measureCopy;
    private readonly Func<Transfer, double> measureTransfer;
    private readonly SortedDictionary<string, double> entries;
    private bool changed;

    /// <param name="path">The cache file (<see cref="DefaultPath"/> by default); a missing file is an empty cache.</param>
    /// <param name="environment">What else the times depend on: threads, bridge ABI, libtorch (<see cref="Environment"/>).</param>
    /// <param name="measure">How a chain of shards is timed, seconds per shard (tests inject one; default <see cref="MeasureChain"/> with <paramref name="concurrent"/> copies at once).</param>
    /// <param name="concurrent">How many ranks compute each shard at the same moment on this machine (<see cref="Concurrent"/>); part of <paramref name="environment"/>.</param>
    /// <param name="measureCopy">How the copy rate is timed (tests inject one; default <see cref="MeasureCopy"/>).</param>
    public MeasuredLayerTimes(string path, string environment, Func<IReadOnlyList<ComputeShard>, double[]>? measure = null, int concurrent = 1,
        Func<double>? measureCopy = null, Func<Transfer, double>? measureTransfer = null)
    {
        this.measureTransfer = measureTransfer ?? (transfer => MeasureTransferCopies(transfer, concurrent));
        this.measureCopy = measureCopy ?? (() => MeasureCopy(concurrent));
        this.path = path;
        this.environment = environment;
        this.measure = measure ?? (chain => MeasureChain(chain, concurrent));
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

    /// <summary>What a measurement times (in the key: times of an older measurement, of a shard stepped alone, without the update, on constant data or a median, are not reused).</summary>
    private const string What = "step with guard and sgd update|random data|in a model's chain|mean|other ranks as processes";

    /// <summary>A shard no chain measured (<see cref="Prepare"/>) is measured in a chain of its own.</summary>
    public double Seconds(LayerSpec layer, int[] sampleInputShape, int batch, bool inputGradient = true)
    {
        var shard = new ComputeShard(layer, sampleInputShape, batch, inputGradient);
        Prepare([[shard]]);
        return entries[KeyOf(shard)];
    }

    /// <summary>Measures each chain with a shard the cache lacks (all of its shards together, as the engine steps
    /// them) and keeps the times of the shards it lacked; a shard in several chains keeps its first time.</summary>
    public void Prepare(IEnumerable<IReadOnlyList<ComputeShard>> chains)
    {
        foreach (var chain in chains)
        {
            if (chain.All(shard => entries.ContainsKey(KeyOf(shard))))
            {
                continue;
            }

            var seconds = measure(chain);
            for (var i = 0; i < chain.Count; i++)
            {
                if (entries.TryAdd(KeyOf(chain[i]), seconds[i]))
                {
                    changed = true;
                    Measured++;
                }
            }
        }
    }

    private string KeyOf(ComputeShard shard) => $"{shard.Key}|{environment}";

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

    /// <summary>Timed as the engine runs them (<see cref="MeasureTransferCopies"/>), once per pair of layouts, cached.</summary>
    public double TransferCopySeconds(Transfer transfer)
    {
        if (transfer.Kind == TransferKind.None || transfer.Held.Length == 0)
        {
            return 0;
        }

        var key = $"transfer copies|{transfer.Key}|{environment}";
        if (!entries.TryGetValue(key, out var seconds))
        {
            seconds = measureTransfer(transfer);
            entries[key] = seconds;
            changed = true;
            Measured++;
        }

        return seconds;
    }

    /// <summary>
    /// The engine's copies of one transfer (<see cref="BlockTransfer.CopiesOnly"/>), forward and backward, for every
    /// rank, <paramref name="concurrent"/> ranks' at once on threads of their own (they share the memory bandwidth as
    /// the ranks do): the slowest rank's mean over the timed repeats, after warm-ups, the caches flushed before each
    /// (in the engine the layers stream their activations, weights and saved tensors through the caches between two
    /// transfers: a transfer's blocks repeated warm copied several times faster than the engine's).
    /// </summary>
    public static double MeasureTransferCopies(Transfer transfer, int concurrent = 1)
    {
        const int Repeats = 7;
        var ranks = transfer.Held.Length;
        concurrent = Math.Clamp(concurrent, 1, ranks);
        var seconds = new double[ranks];
        using var start = new Barrier(concurrent);
        var rounds = (ranks + concurrent - 1) / concurrent;
        void Ranks(int k)
        {
            var flush = new byte[FlushBytes];

            // Every thread steps the same rounds (the barrier's count); a rank past the last one is none.
            for (var round = 0; round < rounds; round++)
            {
                var rank = (round * concurrent) + k;
                var copies = rank < ranks ? new BlockTransfer(transfer.Held, transfer.Needed, rank, transfer.Columns) : null;
                var (held, needed) = copies?.Elements ?? (0, 0);
                var heldValues = new float[held];
                var neededValues = new float[needed];
                var neededGradient = new float[needed];
                var heldGradient = new float[held];
                var total = 0.0;
                for (var run = -WarmUps; run < Repeats; run++)
                {
                    flush.AsSpan().Fill((byte)run);
                    start.SignalAndWait();
                    var clock = Stopwatch.GetTimestamp();
                    copies?.CopiesOnly(heldValues, neededValues, neededGradient, heldGradient);
                    total += run >= 0 ? Stopwatch.GetElapsedTime(clock).TotalSeconds : 0;
                }

                if (rank < ranks)
                {
                    seconds[rank] = total / Repeats;
                }
            }
        }

        var threads = Enumerable.Range(1, concurrent - 1).Select(k => new Thread(() => Ranks(k))).ToList();
        threads.ForEach(t => t.Start());
        Ranks(0);
        threads.ForEach(t => t.Join());
        return seconds.Max();
    }

    public void Save()
    {
        if (changed)
        {
            AtomicFile.WriteAllText(path, JsonSerializer.Serialize(new CacheFile(entries), new JsonSerializerOptions { WriteIndented = true }) + "\n");
            changed = false;
        }
    }

    /// <summary>
    /// Times a chain of shards on the CPU as the engine steps a model: zeroed gradients, forward through every shard,
    /// backward through them in reverse (the input gradient where <see cref="ComputeShard.InputGradient"/>: an inner
    /// layer passes it on), then each shard's guard pass over its gradients and optimizer update (SGD with momentum,
    /// train's default); the caches flushed before each step (the engine reads a new batch between steps). The inputs
    /// and output gradients are seeded pseudo-random values shaped like the engine's activations
    /// (<c>FillLikeActivations</c>), not a constant. <see cref="WarmUps"/> steps first (the first touches of the buffers
    /// and the momentum buffers' allocation), then the mean per shard over about <see cref="MeasureSeconds"/> of steps
    /// (<see cref="Runs"/> to <see cref="MaxRuns"/>), timed on the calling thread while <paramref name="concurrent"/> - 1
    /// other processes step the same chain (<see cref="ChainLoad"/>).
    /// </summary>
    public static double[] MeasureChain(IReadOnlyList<ComputeShard> chain, int concurrent = 1)
    {
        // The engine's ranks run the same shards at about the same moment and share the memory bandwidth and caches:
        // `concurrent` - 1 copies of the chain step in processes of their own (ChainLoad) while this thread's steps are
        // timed. The run count comes from the last warm-up.
        using var steps = new ChainSteps(chain);
        using var load = concurrent > 1 ? ChainLoad.Start(chain, concurrent - 1, TorchRuntime.Threads) : null;

        // The process's first chain runs longer untimed: measured first, the same chain came out about 15% slower
        // than after another chain (the allocator's heap and the code paths still growing).
        var warmUps = WarmUps + (Interlocked.Increment(ref chainsMeasured) == 1 ? FirstChainWarmUps : 0);
        var last = 0.0;
        for (var run = 0; run < warmUps; run++)
        {
            last = steps.Step(run).Sum();
        }

        var count = last > 0 ? Math.Clamp((int)(MeasureSeconds / last), Runs, MaxRuns) : Runs;
        var runs = Enumerable.Range(0, count).Select(steps.Step).ToList();
        return [.. Enumerable.Range(0, chain.Count).Select(i => runs.Average(run => run[i]))];
    }

    /// <summary>A chain's shards, each on its own stage, stepped as the engine steps a model (<see cref="MeasureChain"/>).</summary>
    internal sealed class ChainSteps : IDisposable
    {
        private readonly List<ShardStep> steps = [];
        private readonly byte[] flush = new byte[FlushBytes];

        public ChainSteps(IReadOnlyList<ComputeShard> chain)
        {
            try
            {
                steps.AddRange(chain.Select(shard => new ShardStep(shard.Layer, shard.InputShape, shard.Batch, shard.InputGradient)));
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        /// <summary>One step: seconds per shard.</summary>
        public double[] Step(int run)
        {
            var seconds = new double[steps.Count];

            // Past the last-level cache: the first shard finds its weights in memory, as after the engine's batch.
            flush.AsSpan().Fill((byte)run);
            for (var i = 0; i < steps.Count; i++)
            {
                seconds[i] += steps[i].ZeroGradients();
            }

            for (var i = 0; i < steps.Count; i++)
            {
                seconds[i] += steps[i].Forward();
            }

            for (var i = steps.Count - 1; i >= 0; i--)
            {
                seconds[i] += steps[i].Backward();
            }

            for (var i = 0; i < steps.Count; i++)
            {
                seconds[i] += steps[i].Update();
            }

            return seconds;
        }

        public void Dispose() => steps.ForEach(step => step.Dispose());
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

    private const int FirstChainWarmUps = 10;

    private static int chainsMeasured;

    /// <summary>About how long the timed steps of one chain take together (at least <see cref="Runs"/>, at most <see cref="MaxRuns"/> steps).</summary>
    private const double MeasureSeconds = 0.4;

    private const int MaxRuns = 60;

    /// <summary>Past this machine's last-level cache (an EPYC's is 16 to 32 MiB per core complex).</summary>
    private const int FlushBytes = 32 << 20;

    /// <summary>One shard's training step on its own stage, with seeded pseudo-random data, in its parts (see <see cref="MeasureChain"/>).</summary>
    private sealed class ShardStep : IDisposable
    {
        private readonly Stage stage;
        private readonly Optimizer? optimizer;
        private readonly float[] input, output, outputGradient, inputGradient;
        private readonly int batch;
        private readonly bool wantsInputGradient;
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

        public double ZeroGradients()
        {
            var start = Stopwatch.GetTimestamp();
            stage.ZeroGradients();
            return Stopwatch.GetElapsedTime(start).TotalSeconds;
        }

        public double Forward()
        {
            var start = Stopwatch.GetTimestamp();
            stage.Forward(0, input, batch, output, requireInputGradient: wantsInputGradient);
            return Stopwatch.GetElapsedTime(start).TotalSeconds;
        }

        public double Backward()
        {
            var start = Stopwatch.GetTimestamp();
            stage.Backward(0, outputGradient, inputGradient);
            return Stopwatch.GetElapsedTime(start).TotalSeconds;
        }

        /// <summary>The divergence guard's pass over the shard's gradients, as the engine makes it every step, and the optimizer's step.</summary>
        public double Update()
        {
            if (optimizer is null)
            {
                return 0;
            }

            var start = Stopwatch.GetTimestamp();
            guardNorm += NonFiniteValue.SquaredNorm(stage.Gradients);
            optimizer.Step();
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
