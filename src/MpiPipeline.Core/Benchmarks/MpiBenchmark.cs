using MpiPipeline.Mpi;

namespace MpiPipeline.Benchmarks;

/// <summary>
/// OSU-style MPI benchmark, the loops of bench/mpi/mpi_bench.c (the C baseline, which must stay the same loop):
/// for each operation, a time-based warm-up at the first size; then for each size a warm-up batch and
/// <see cref="IterationSchedule.Samples"/> batches, each started by a barrier and timed with MPI_Wtime. A sample is
/// the batch time / ops, taken from the slowest rank (MPI_MAX over ranks); ping-pong halves it (one-way latency).
/// Every rank runs this and gets the same results. Prints nothing.
/// </summary>
internal sealed class MpiBenchmark(Communicator world, MpiBenchmarkOptions options)
{
    private const int Tag = 7;

    /// <summary>Runs every operation at every size; <paramref name="onResult"/> sees each result as it is measured.</summary>
    public IReadOnlyList<MpiBenchmarkResult> Run(Action<MpiBenchmarkResult>? onResult = null)
    {
        if (options.Ops.Contains(MpiBenchmarkOp.PingPong) && world.Size < 2)
        {
            throw new InputException($"ping-pong needs at least 2 ranks; the job has {world.Size}.");
        }

        var results = new List<MpiBenchmarkResult>();
        var largest = options.Sizes.Max();
        foreach (var op in options.Ops)
        {
            using var send = new NativeBuffer(largest, 1);
            using var receive = new NativeBuffer(largest, 0);
            WarmUp(op, options.Sizes[0], send, receive);
            foreach (var size in options.Sizes)
            {
                var result = Measure(op, size, send, receive);
                results.Add(result);
                onResult?.Invoke(result);
            }
        }

        return results;
    }

    private MpiBenchmarkResult Measure(MpiBenchmarkOp op, long size, NativeBuffer send, NativeBuffer receive)
    {
        var schedule = IterationSchedule.For(size, options.IterationScale, options.Samples);
        world.Barrier();
        Batch(op, size, send, receive, schedule.WarmupOps);

        var microseconds = new double[schedule.Samples];
        var perOp = (op == MpiBenchmarkOp.PingPong ? 0.5 : 1.0) * 1e6 / schedule.OpsPerSample;
        for (var s = 0; s < schedule.Samples; s++)
        {
            world.Barrier();
            var start = MpiEnvironment.Wtime();
            Batch(op, size, send, receive, schedule.OpsPerSample);
            microseconds[s] = (MpiEnvironment.Wtime() - start) * perOp;
        }

        // Ranks that sat out a ping-pong contribute 0; the slowest rank's time is the sample.
        if (op == MpiBenchmarkOp.PingPong && world.Rank > 1)
        {
            Array.Clear(microseconds);
        }

        world.Allreduce<double>(microseconds, ReduceOp.Max);
        return new MpiBenchmarkResult(op, size, schedule.WarmupOps, schedule.OpsPerSample, schedule.Samples,
            SampleStatistics.Min(microseconds), SampleStatistics.Median(microseconds));
    }

    /// <summary>Runs batches of the first size until rank 0 has seen the warm-up time pass (the decision is broadcast).</summary>
    private void WarmUp(MpiBenchmarkOp op, long size, NativeBuffer send, NativeBuffer receive)
    {
        var ops = IterationSchedule.For(size, options.IterationScale, options.Samples).OpsPerSample;
        Span<int> more = [1];
        world.Barrier();
        var start = MpiEnvironment.Wtime();
        while (more[0] != 0)
        {
            Batch(op, size, send, receive, ops);
            more[0] = MpiEnvironment.Wtime() - start < options.FirstWarmupSeconds ? 1 : 0;
            world.Bcast(more, 0);
        }
    }

    private void Batch(MpiBenchmarkOp op, long size, NativeBuffer send, NativeBuffer receive, int ops)
    {
        switch (op)
        {
            case MpiBenchmarkOp.PingPong:
                PingPong(send.As<byte>(size), ops);
                break;
            case MpiBenchmarkOp.Allreduce:
                Allreduce(send.As<float>(size), receive.As<float>(size), ops);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(op), op, null);
        }
    }

    private void PingPong(Span<byte> message, int ops)
    {
        if (world.Rank == 0)
        {
            for (var i = 0; i < ops; i++)
            {
                world.Send<byte>(message, 1, Tag);
                world.Recv(message, 1, Tag);
            }
        }
        else if (world.Rank == 1)
        {
            for (var i = 0; i < ops; i++)
            {
                world.Recv(message, 0, Tag);
                world.Send<byte>(message, 0, Tag);
            }
        }
    }

    private void Allreduce(Span<float> send, Span<float> receive, int ops)
    {
        for (var i = 0; i < ops; i++)
        {
            world.Allreduce<float>(send, receive, ReduceOp.Sum);
        }
    }
}
