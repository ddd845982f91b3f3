namespace MpiPipeline.Benchmarks;

/// <summary>The command and flags of <c>mpipipe bench mpi</c>: the CLI defines the options from them, the scaling sweep its benchmark jobs.</summary>
internal static class BenchMpiFlags
{
    public const string Verb = "bench", Subverb = "mpi", MinSize = "--min-size", MaxSize = "--max-size", Step = "--step", Ops = "--ops",
        Iterations = "--iterations", Samples = "--samples", Warmup = "--warmup", Json = "--json";
}

/// <summary>The operations <c>mpipipe bench mpi</c> measures; <see cref="MpiBenchmarkOps.Name"/> is their name on the command line and in raw lines.</summary>
internal enum MpiBenchmarkOp
{
    /// <summary>Ranks 0 and 1 bounce a message (MPI_Send/MPI_Recv of bytes); the time per op is half a round trip.</summary>
    PingPong,

    /// <summary>MPI_Allreduce (SUM, float) over all ranks, separate send and receive buffers.</summary>
    Allreduce,
}

internal static class MpiBenchmarkOps
{
    public static IReadOnlyList<MpiBenchmarkOp> All { get; } = [MpiBenchmarkOp.PingPong, MpiBenchmarkOp.Allreduce];

    public static string Name(this MpiBenchmarkOp op) => op switch
    {
        MpiBenchmarkOp.PingPong => "pingpong",
        MpiBenchmarkOp.Allreduce => "allreduce",
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
    };

    /// <summary>Parses "pingpong,allreduce" (any order, case-insensitive, no repeats) into ops in the order given.</summary>
    public static bool TryParseList(string? text, out IReadOnlyList<MpiBenchmarkOp> ops, out string error)
    {
        var parsed = new List<MpiBenchmarkOp>();
        ops = parsed;
        error = "";
        foreach (var word in (text ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var op = All.Where(o => string.Equals(o.Name(), word, StringComparison.OrdinalIgnoreCase)).Select(o => (MpiBenchmarkOp?)o).FirstOrDefault();
            if (op is null)
            {
                error = $"unknown operation '{word}' (known: {string.Join(", ", All.Select(o => o.Name()))})";
                return false;
            }

            if (parsed.Contains(op.Value))
            {
                error = $"operation '{word}' is named twice";
                return false;
            }

            parsed.Add(op.Value);
        }

        if (parsed.Count == 0)
        {
            error = "no operation given";
            return false;
        }

        return true;
    }
}

/// <summary>What one <c>bench mpi</c> run measures.</summary>
internal sealed record MpiBenchmarkOptions(
    IReadOnlyList<long> Sizes,
    IReadOnlyList<MpiBenchmarkOp> Ops,
    double IterationScale = 1,
    int Samples = IterationSchedule.DefaultSamples,
    double FirstWarmupSeconds = IterationSchedule.FirstWarmupSeconds)
{
    /// <summary>
    /// The options a world of <paramref name="worldSize"/> ranks can run. Ping-pong needs ranks 0 and 1: with one rank
    /// it is dropped and <paramref name="note"/> says so; when nothing would be left, bad input (same on every rank).
    /// </summary>
    public MpiBenchmarkOptions ForWorldSize(int worldSize, out string? note)
    {
        note = null;
        if (worldSize >= 2 || !Ops.Contains(MpiBenchmarkOp.PingPong))
        {
            return this;
        }

        var remaining = Ops.Where(op => op != MpiBenchmarkOp.PingPong).ToList();
        if (remaining.Count == 0)
        {
            throw new InputException($"ping-pong needs at least 2 ranks; the job has {worldSize}. Launch with -n 2 or more.");
        }

        note = $"ping-pong skipped: it needs at least 2 ranks and the job has {worldSize}.";
        return this with { Ops = remaining };
    }
}
