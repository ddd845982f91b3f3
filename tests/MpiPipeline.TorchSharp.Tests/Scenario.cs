using System.Globalization;
using MpiPipeline.Exchange.Compression;
using MpiPipeline.Mpi;
using TorchSharp;
using static TorchSharp.torch;

namespace MpiPipeline.TorchSharp.Tests;

/// <summary>
/// One mpiexec launch checks everything the rank tests assert, each check printing
/// <c>check NAME rank R: ok|FAIL (detail)</c>: the constructor's broadcast, PSGD against single-rank training with the
/// global batch, the staged (CUDA) path against the direct one, local SGD with tau = 1 against PSGD, and a compressed
/// exchange (same decoded average everywhere, bytes counted against bytes sent), and modules that differ between ranks
/// refused on every rank. Then, with --throw-rank, that rank
/// throws while the others wait in a collective.
/// </summary>
internal static class Scenario
{
    public const int Steps = 10;
    public const int GlobalBatch = 16;
    public const double Tolerance = 1e-5;
    public const string Compress = "qsgd:16";

    /// <summary>The names the tests expect, once per rank.</summary>
    public static readonly string[] Checks =
        ["broadcast", "psgd-equals-single", "no-gradient-copies", "staged-equals-direct", "local-sgd-tau1-equals-psgd",
         "zero-grad-copies-counted", "compressed-same-average", "compressed-bytes-counted", "modules-differ-refused"];

    public static int Run(Communicator world, int throwRank)
    {
        torch.set_num_threads(1);
        var rank = world.Rank;

        // PSGD (momentum 0.9) from a different initialization per rank: the constructor must hand every rank rank 0's.
        var direct = Model(1 + rank);
        using (var dp = new DataParallel(direct, world))
        {
            Report(world, "broadcast", MaxRelative(Flat(direct), Flat(Model(1))) == 0, "parameters equal rank 0's initialization");
            Train(direct, dp, world, momentum: 0.9, Zeroing.Adapter);
            Report(world, "no-gradient-copies", dp.GradientCopies == 0, $"{dp.GradientCopies} copies with ZeroGradients");
        }

        var single = Model(1);
        Train(single, null, world, momentum: 0.9, Zeroing.Optimizer);
        var psgdError = MaxRelative(Flat(direct), Flat(single));
        Report(world, "psgd-equals-single", psgdError <= Tolerance, $"max relative difference {psgdError:E2} after {Steps} steps");

        var staged = Model(1 + rank);
        using (var dp = new DataParallel(staged, world, new DataParallelOptions { ForceStaging = true }))
        {
            Train(staged, dp, world, momentum: 0.9, Zeroing.Adapter);
            var difference = MaxRelative(Flat(staged), Flat(direct));
            Report(world, "staged-equals-direct", dp.Staged && difference == 0, $"staged {dp.Staged}, max relative difference {difference:E2}");
        }

        // Plain SGD: averaging the models after every step is averaging the gradients before it.
        var psgd = Model(1);
        var local = Model(1);
        using (var dpPsgd = new DataParallel(psgd, world))
        using (var dpLocal = new DataParallel(local, world))
        {
            var copies = Train(psgd, dpPsgd, world, momentum: 0, Zeroing.SetToNone);
            Train(local, dpLocal, world, momentum: 0, Zeroing.Optimizer, tau: 1);
            var difference = MaxRelative(Flat(local), Flat(psgd));
            Report(world, "local-sgd-tau1-equals-psgd", difference <= Tolerance, $"max relative difference {difference:E2}");
            Report(world, "zero-grad-copies-counted", copies == Steps * psgd.parameters().Count(),
                $"{copies} gradients copied after zero_grad(set_to_none: true)");
        }

        var compressed = Model(1);
        var counting = new CountingCompressor(CompressorRegistry.Create(Compress, new CompressorContext(7, rank))!);
        using (var dp = new DataParallel(compressed, world, new DataParallelOptions { Compressor = counting }))
        {
            var same = true;
            Train(compressed, dp, world, momentum: 0.9, Zeroing.Adapter, afterAverage: () =>
            {
                var hash = Fnv(Gradients(compressed));
                same &= world.Allreduce(hash, ReduceOp.Min) == world.Allreduce(hash, ReduceOp.Max);
            });
            var finalHash = Fnv(Flat(compressed));
            same &= world.Allreduce(finalHash, ReduceOp.Min) == world.Allreduce(finalHash, ReduceOp.Max);
            Report(world, "compressed-same-average", same, $"{Compress}: gradients after every round and the final parameters bitwise equal across ranks");
            Report(world, "compressed-bytes-counted", dp.Counters.PayloadBytes == counting.BytesSent && dp.Counters.Rounds == Steps,
                $"reported {dp.Counters.PayloadBytes} bytes in {dp.Counters.Rounds} rounds, sent {counting.BytesSent} " +
                $"({dp.Counters.BitsPerCoordinate.ToString("F2", CultureInfo.InvariantCulture)} bits per coordinate)");
        }

        // The last rank builds a wider head (fc 144->12): every rank, not only the odd one, refuses with one message.
        torch.manual_seed(3);
        var mismatched = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, rank == world.Size - 1 ? 12 : 10));
        string refusal;
        try
        {
            using var dp = new DataParallel(mismatched, world);
            refusal = "accepted";
        }
        catch (InputException error)
        {
            refusal = error.Message;
        }

        Report(world, "modules-differ-refused", refusal.Contains("the ranks' modules differ", StringComparison.Ordinal), refusal);

        Console.Out.Flush();
        world.Barrier();
        if (rank == throwRank)
        {
            Console.WriteLine($"rank {rank} throws at {DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}");
            Console.Out.Flush();
            throw new InvalidOperationException($"scenario: rank {rank} fails on purpose");
        }

        if (throwRank >= 0)
        {
            // Blocked in a collective the thrower never joins: only MPI_Abort ends this rank.
            world.Barrier();
        }

        return 0;
    }

    private enum Zeroing
    {
        Adapter,
        Optimizer,
        SetToNone,
    }

    /// <summary>The same small cnn on every call with the same seed: conv 1->4 3x3, ReLU, fc 144->10 on 8x8 inputs.</summary>
    internal static nn.Module<Tensor, Tensor> Model(long seed)
    {
        torch.manual_seed(seed);
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10));
    }

    /// <summary>
    /// <see cref="Steps"/> SGD steps on the global batch of each step (seeded by the step, the same on every rank),
    /// this rank's share when <paramref name="dp"/> is given, all of it otherwise. Returns the adapter's gradient copies.
    /// </summary>
    private static long Train(nn.Module<Tensor, Tensor> model, DataParallel? dp, Communicator world, double momentum,
        Zeroing zeroing, int tau = 0, Action? afterAverage = null)
    {
        using var optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum);
        var share = dp is null ? GlobalBatch : GlobalBatch / world.Size;
        var first = dp is null ? 0 : world.Rank * share;
        for (var step = 0; step < Steps; step++)
        {
            using var scope = torch.NewDisposeScope();
            var generator = new Generator(1000 + (ulong)step);
            var x = torch.randn([GlobalBatch, 1, 8, 8], generator: generator).narrow(0, first, share);
            var y = torch.randint(0, 10, [GlobalBatch], generator: generator).narrow(0, first, share);
            switch (zeroing)
            {
                case Zeroing.Adapter:
                    dp!.ZeroGradients();
                    break;
                case Zeroing.Optimizer:
                    optimizer.zero_grad();
                    break;
                case Zeroing.SetToNone:
                    // Backward then allocates new gradients, away from the adapter's views.
                    model.zero_grad(set_to_none: true);
                    break;
            }

            var loss = nn.functional.cross_entropy(model.call(x), y);
            loss.backward();
            if (dp is not null && tau == 0)
            {
                dp.AverageGradients();
                afterAverage?.Invoke();
            }

            optimizer.step();
            if (dp is not null && tau > 0 && (step + 1) % tau == 0)
            {
                dp.AverageModels();
            }
        }

        return dp?.GradientCopies ?? 0;
    }

    private static float[] Flat(nn.Module module) => [.. module.parameters().SelectMany(p => p.detach().cpu().data<float>().ToArray())];

    private static float[] Gradients(nn.Module module) => [.. module.parameters().SelectMany(p => p.grad!.cpu().data<float>().ToArray())];

    /// <summary>max |a - b| / max |b|.</summary>
    private static double MaxRelative(float[] a, float[] b)
    {
        var scale = b.Max(v => Math.Abs((double)v));
        return a.Zip(b, (u, v) => Math.Abs((double)u - v)).Max() / scale;
    }

    private static long Fnv(float[] values)
    {
        var hash = 14695981039346656037UL;
        foreach (var v in values)
        {
            hash = (hash ^ BitConverter.SingleToUInt32Bits(v)) * 1099511628211UL;
        }

        return (long)hash;
    }

    private static void Report(Communicator world, string check, bool ok, string detail)
    {
        Console.WriteLine($"check {check} rank {world.Rank}: {(ok ? "ok" : "FAIL")} ({detail})");
    }

    /// <summary>Counts what the exchange hands to MPI, independently of its counters: each payload plus its size word.</summary>
    private sealed class CountingCompressor(IGradientCompressor inner) : IGradientCompressor
    {
        public long BytesSent { get; private set; }

        public string Spec => inner.Spec;

        public ReadOnlySpan<byte> Encode(ReadOnlySpan<float> bucket, int offset, int length, long step)
        {
            var payload = inner.Encode(bucket, offset, length, step);
            BytesSent += payload.Length + sizeof(int);
            return payload;
        }

        public void DecodeAdd(ReadOnlySpan<byte> payload, Span<float> sum) => inner.DecodeAdd(payload, sum);
    }
}
