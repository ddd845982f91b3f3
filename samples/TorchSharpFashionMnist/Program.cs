using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using MpiPipeline;
using MpiPipeline.Mpi;
using MpiPipeline.TorchSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchSharpFashionMnist;

/// <summary>
/// The cnn of the project's model zoo (conv 3x3 16 + relu + pool, conv 3x3 32 + relu + pool, fc 128, fc 10), written
/// in TorchSharp and trained on Fashion-MNIST with PSGD (or local SGD) across the ranks of mpiexec. Each step every
/// rank takes its share of the global batch (the same permutation everywhere, seeded by seed and epoch), so PSGD on n
/// ranks is single-rank training with the same global batch.
///   mpiexec -n 4 dotnet TorchSharpFashionMnist.dll [--epochs 2] [--batch 128] [--lr 0.05] [--momentum 0.9]
///       [--compress none|fp16|qsgd:S|ecq:S] [--local-sgd TAU] [--threads 1] [--max-steps N] [--warmup W] [--no-adapter] [--malloc-defaults] [--data DIR]
/// --no-adapter (one rank only): the same loop without DataParallel, TorchSharp alone. --warmup W: each epoch's first
/// W steps are not timed. --malloc-defaults: glibc's malloc settings instead of MallocTuning's (both paths tune by default).
/// </summary>
public static class Program
{
    private const float PixelMean = 0.2860f;
    private const float PixelStd = 0.3530f;

    public static int Main(string[] args) => MpiRuntime.Run(world => Train(world, Options.Parse(args)));

    private static int Train(Communicator world, Options o)
    {
        if (o.NoAdapter && world.Size != 1)
        {
            throw new InputException("--no-adapter trains TorchSharp alone: run it on one rank");
        }

        if (o.Batch % world.Size != 0)
        {
            throw new InputException($"--batch {o.Batch} must be divisible by the {world.Size} ranks (each takes batch / ranks)");
        }

        // The adapter tunes glibc malloc for libtorch (MallocTuning); TorchSharp alone gets the same, so that the two
        // compare like for like, unless --malloc-defaults asks for glibc's own settings.
        var malloc = o.MallocDefaults ? "glibc defaults" : MallocTuning.Apply();
        torch.set_num_threads(o.Threads);
        var (trainX, trainY) = Load(o.Data, "train");
        var (testX, testY) = Load(o.Data, "t10k");
        torch.manual_seed(o.Seed);
        var model = Cnn();
        using var optimizer = torch.optim.SGD(model.parameters(), o.LearningRate, o.Momentum);
        // More ranks than cores on this node: a rank waiting for its Allreduce yields its core to the ranks still
        // computing, instead of MPICH's busy-polling blocking Allreduce.
        var node = world.SplitShared();
        var wait = node.Size > Environment.ProcessorCount ? IdleWait.Yield : (IdleWait?)null;
        node.Free();
        using var dp = o.NoAdapter ? null
            : new DataParallel(model, world, new DataParallelOptions { Compress = o.Compress, Seed = o.Seed, Wait = wait, TuneMalloc = !o.MallocDefaults });
        var share = o.Batch / world.Size;
        var stepsPerEpoch = (int)(trainX.shape[0] / o.Batch);
        var rank0 = world.Rank == 0;
        if (rank0)
        {
            Console.WriteLine($"TorchSharp cnn on Fashion-MNIST: {world.Size} ranks x {share} samples, global batch {o.Batch}, " +
                $"{(o.LocalSgd > 0 ? $"local SGD tau {o.LocalSgd}" : "PSGD")}, exchange {dp?.Describe() ?? "none (TorchSharp alone)"}, {o.Threads} thread(s), malloc: {malloc}");
        }

        var step = 0;
        for (var epoch = 1; epoch <= o.Epochs && step < o.MaxSteps; epoch++)
        {
            using var order = torch.randperm(trainX.shape[0], generator: new Generator((ulong)(o.Seed * 1000 + epoch)));
            var lossSum = 0.0;
            var steps = 0;
            var clock = Stopwatch.StartNew();
            var faults = MinorFaults();
            for (var s = 0; s < stepsPerEpoch && step < o.MaxSteps; s++, step++, steps++)
            {
                if (s == o.Warmup)
                {
                    clock.Restart();
                    faults = MinorFaults();
                }

                using var scope = torch.NewDisposeScope();
                var indices = order.narrow(0, ((long)s * o.Batch) + (world.Rank * share), share);
                var x = trainX.index_select(0, indices);
                var y = trainY.index_select(0, indices);
                if (dp is null)
                {
                    optimizer.zero_grad();
                }
                else
                {
                    dp.ZeroGradients();
                }

                var loss = nn.functional.cross_entropy(model.call(x), y);
                loss.backward();
                if (dp is not null && o.LocalSgd == 0)
                {
                    dp.AverageGradients();
                }

                optimizer.step();
                if (dp is not null && o.LocalSgd > 0 && (step + 1) % o.LocalSgd == 0)
                {
                    dp.AverageModels();
                }

                lossSum += loss.item<float>();
            }

            var seconds = clock.Elapsed.TotalSeconds;
            var timed = Math.Max(1, steps - Math.Min(o.Warmup, steps));
            var faultsPerStep = (MinorFaults() - faults) / (double)timed;
            if (dp is not null && o.LocalSgd > 0)
            {
                // Evaluate the average model, as local SGD ends with one.
                dp.AverageModels();
            }

            var meanLoss = world.Allreduce(lossSum, ReduceOp.Sum) / world.Size / Math.Max(1, steps);
            var accuracy = Accuracy(model, testX, testY);
            if (rank0)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"epoch {epoch}: {steps} steps, train loss {meanLoss:F4}, test accuracy {100 * accuracy:F2}%, " +
                    $"{1000 * seconds / timed:F2} ms/step, {timed * (double)o.Batch / seconds:F0} samples/s, {faultsPerStep:F0} minor page faults/step") +
                    (o.Warmup > 0 ? $" (timed after {o.Warmup} warm-up steps)" : ""));
            }
        }

        if (rank0 && dp is not null)
        {
            var c = dp.Counters;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"rank 0 handed MPI {c.PayloadBytes} bytes in {c.Rounds} rounds ({c.BitsPerCoordinate:F2} bits per coordinate), " +
                $"{c.Seconds:F2} s in the exchange; gradient copies: {dp.GradientCopies}"));
        }

        return 0;
    }

    private static nn.Module<Tensor, Tensor> Cnn() => nn.Sequential(
        nn.Conv2d(1, 16, 3, padding: 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding: 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10));

    private static double Accuracy(nn.Module<Tensor, Tensor> model, Tensor x, Tensor y)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        model.eval();
        var correct = 0L;
        for (long i = 0; i < x.shape[0]; i += 1000)
        {
            var n = Math.Min(1000, x.shape[0] - i);
            correct += model.call(x.narrow(0, i, n)).argmax(1).eq(y.narrow(0, i, n)).sum().item<long>();
        }

        model.train();
        return (double)correct / x.shape[0];
    }

    /// <summary>An IDX pair (gzip), as the Debian package dataset-fashion-mnist installs it: images normalized, labels int64.</summary>
    private static (Tensor Images, Tensor Labels) Load(string directory, string prefix)
    {
        var images = Read(Path.Combine(directory, $"{prefix}-images-idx3-ubyte.gz"), 2051, 3);
        var labels = Read(Path.Combine(directory, $"{prefix}-labels-idx1-ubyte.gz"), 2049, 1);
        var count = labels.Length;
        if (images.Length != count * 28 * 28)
        {
            throw new InputException($"{directory}: {prefix} holds {images.Length} pixels for {count} labels; Fashion-MNIST images are 28x28");
        }

        var pixels = new float[images.Length];
        for (var i = 0; i < pixels.Length; i++)
        {
            pixels[i] = ((images[i] / 255f) - PixelMean) / PixelStd;
        }

        return (torch.tensor(pixels, [count, 1, 28, 28]).DetachFromDisposeScope(),
                torch.tensor(labels.Select(l => (long)l).ToArray()).DetachFromDisposeScope());
    }

    private static byte[] Read(string path, int magic, int dimensions)
    {
        if (!File.Exists(path))
        {
            throw new InputException($"{path} not found (install the Debian package dataset-fashion-mnist, or pass --data DIR)");
        }

        using var input = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
        using var reader = new BinaryReader(input);
        if (System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(reader.ReadInt32()) != magic)
        {
            throw new InputException($"{path}: not an IDX file with magic {magic}");
        }

        var size = 1L;
        for (var d = 0; d < dimensions; d++)
        {
            size *= System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(reader.ReadInt32());
        }

        var data = reader.ReadBytes(checked((int)size));
        return data.Length == size ? data : throw new InputException($"{path}: truncated ({data.Length} of {size} bytes)");
    }

    /// <summary>
    /// This process's minor page faults so far (/proc/self/stat, field 10): memory the kernel had to map in on first
    /// touch. Unlike a step time it does not depend on what else runs on the machine.
    /// </summary>
    private static long MinorFaults()
    {
        try
        {
            var stat = File.ReadAllText("/proc/self/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[7], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private sealed record Options(int Epochs, int Batch, double LearningRate, double Momentum, string Compress, int LocalSgd,
        int Threads, int MaxSteps, int Warmup, bool NoAdapter, string Data, long Seed, bool MallocDefaults = false)
    {
        public static Options Parse(string[] args)
        {
            var o = new Options(2, 128, 0.05, 0.9, "none", 0, 1, int.MaxValue, 0, false, "/usr/share/datasets/fashion-mnist", 1);
            for (var i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new InputException($"{args[i]} needs a value");
                int Int() => int.TryParse(Value(), CultureInfo.InvariantCulture, out var v) && v >= 0 ? v : throw new InputException($"{args[i - 1]} takes a non-negative integer, got '{args[i]}'");
                double Real() => double.TryParse(Value(), CultureInfo.InvariantCulture, out var v) && v >= 0 ? v : throw new InputException($"{args[i - 1]} takes a non-negative number, got '{args[i]}'");
                o = args[i] switch
                {
                    "--epochs" => o with { Epochs = Int() },
                    "--batch" => o with { Batch = Math.Max(1, Int()) },
                    "--lr" => o with { LearningRate = Real() },
                    "--momentum" => o with { Momentum = Real() },
                    "--compress" => o with { Compress = Value() },
                    "--local-sgd" => o with { LocalSgd = Int() },
                    "--threads" => o with { Threads = Math.Max(1, Int()) },
                    "--max-steps" => o with { MaxSteps = Int() },
                    "--warmup" => o with { Warmup = Int() },
                    "--no-adapter" => o with { NoAdapter = true },
                    "--malloc-defaults" => o with { MallocDefaults = true },
                    "--data" => o with { Data = Value() },
                    "--seed" => o with { Seed = Int() },
                    _ => throw new InputException($"unknown option '{args[i]}' (see the comment at the top of Program.cs)"),
                };
            }

            return o;
        }
    }
}
