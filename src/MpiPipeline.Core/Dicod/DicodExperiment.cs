using MpiPipeline.Data;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Dicod;

/// <summary>The problem as the results describe it.</summary>
internal sealed record DicodProblemInfo(
    int Atoms, int AtomLength, int Channels, int Length, double Lambda, double LambdaMax, double Tol, int Seed,
    string? Signal, string? Dictionary, double Density, double Noise);

/// <summary>
/// The results file of one <c>mpipipe dicod</c> run (rank 0 writes it). <see cref="CoreWaitShare"/>: the largest share,
/// over the ranks, of the solving thread's time spent runnable but waiting for a core (<see cref="RunQueueSample"/>);
/// null where the kernel does not say, or in files written before it was recorded.
/// </summary>
internal sealed record DicodResult(
    string Solver,
    int Ranks,
    DicodProblemInfo Problem,
    double Objective,
    long Updates,
    double Seconds,
    bool Converged,
    int NonZeros,
    int SubSegments,
    string Local,
    IReadOnlyList<int> SegmentStarts,
    IReadOnlyList<long> UpdatesPerRank,
    IReadOnlyList<long> MessagesPerRank,
    IReadOnlyList<double> SecondsPerRank,
    int Probes,
    double BetaMaxDeviation,
    double BetaScale,
    string LoadAverage,
    IReadOnlyList<CurvePoint> Curve,
    double? CoreWaitShare = null);

/// <summary>
/// One <c>mpipipe dicod</c> run: the problem built the same way on every rank (the generator's seed, or the files),
/// then the solver the options name (<see cref="Solvers"/>), then its results. DICOD runs on all ranks; the baselines
/// on one.
/// </summary>
internal static class DicodExperiment
{
    /// <summary>The solvers by name: what each does, and how it runs (the world, the problem, the options).</summary>
    public static IReadOnlyList<(string Name, string Help, Func<Communicator, CscProblem, DicodOptions, DicodRun> Run)> Solvers { get; } =
    [
        ("dicod", "DICOD over the ranks of the job (each rank: --local greedy or lgcd on its segment)", RunDicod),
        ("greedy", "greedy coordinate descent, one rank (the paper's CD)", (_, p, o) => Sequential(SequentialSolvers.CoordinateDescent(p, o.Tol, 1, o.MaxUpdates, "greedy"), 1)),
        ("lgcd", "locally greedy coordinate descent, one rank (M sub-segments of 2L - 1 by default)",
            (_, p, o) => Sequential(SequentialSolvers.CoordinateDescent(p, o.Tol, SubSegmentsFor(p.ActivationLength, p.L, o), o.MaxUpdates, "lgcd"), SubSegmentsFor(p.ActivationLength, p.L, o))),
        ("fista", "FISTA, one rank (--max-iterations bounds it)", (_, p, o) => Sequential(SequentialSolvers.Fista(p, o.Tol, o.MaxIterations), 0)),
    ];

    public static IReadOnlyList<string> SolverNames { get; } = [.. Solvers.Select(s => s.Name)];

    public static IReadOnlyList<string> LocalChoices { get; } = ["greedy", "lgcd"];

    /// <summary>The problem the options describe, identical on every rank and every rank count.</summary>
    public static CscProblem BuildProblem(DicodOptions o)
    {
        double[] signal;
        int channels, length;
        if (o.SignalPath is { } signalPath)
        {
            var (shape, values) = NpyFile.ReadDoubles(signalPath, "--signal");
            (channels, length) = shape.Length switch
            {
                1 => (1, shape[0]),
                2 => (shape[0], shape[1]),
                _ => throw new InputException($"--signal {signalPath}: shape ({string.Join(", ", shape)}); give (T,) or (P, T)"),
            };
            signal = values;
        }
        else
        {
            (channels, length, signal) = (o.Channels, o.Length, []);
        }

        double[] dictionary;
        int atoms, atomLength;
        if (o.DictionaryPath is { } dictionaryPath)
        {
            var (shape, values) = NpyFile.ReadDoubles(dictionaryPath, "--dictionary");
            (atoms, var dictionaryChannels, atomLength) = shape.Length switch
            {
                2 => (shape[0], 1, shape[1]),
                3 => (shape[0], shape[1], shape[2]),
                _ => throw new InputException($"--dictionary {dictionaryPath}: shape ({string.Join(", ", shape)}); give (K, L) or (K, P, L)"),
            };
            if (dictionaryChannels != channels)
            {
                throw new InputException($"--dictionary {dictionaryPath}: atoms of {dictionaryChannels} channel(s) for a signal of {channels}");
            }

            dictionary = values;
        }
        else
        {
            (atoms, atomLength) = (o.Atoms, o.AtomLength);
            dictionary = SyntheticCsc.Dictionary(atoms, channels, atomLength, (ulong)o.Seed);
        }

        if (length < atomLength)
        {
            throw new InputException($"the signal (T = {length}) is shorter than an atom (L = {atomLength})");
        }

        if (o.SignalPath is null)
        {
            (signal, _) = SyntheticCsc.Signal(dictionary, atoms, channels, atomLength, length, o.Density, o.Noise, (ulong)o.Seed);
        }

        for (var k = 0; k < atoms; k++)
        {
            var size = channels * atomLength;
            var atom = dictionary.AsSpan(k * size, size);
            if (CscProblem.Dot(atom, atom) == 0)
            {
                throw new InputException($"--dictionary: atom {k} is all zeros (||D_k|| = 0 has no coordinate update)");
            }
        }

        return new CscProblem(atoms, atomLength, channels, length, o.Lambda, signal, dictionary);
    }

    /// <summary>Builds the problem, checks the split, runs the solver; every rank returns the same result.</summary>
    public static DicodResult Run(Communicator world, DicodOptions o)
    {
        var problem = BuildProblem(o);
        if (DicodOptions.SegmentProblem(problem.ActivationLength, problem.L, world.Size) is { } segment)
        {
            throw new InputException(segment, exitCode: 2);
        }

        var solver = Solvers.First(s => s.Name == o.Solver);
        var before = RunQueueSample.Read();
        var run = solver.Run(world, problem, o);
        // DICOD's own, which leaves out the phases a rank waits for messages (yielding: waiting for a core on purpose).
        var waitShare = run.WorkingWaitShare ?? RunQueueSample.WaitShare(before, RunQueueSample.Read());
        // Every rank takes part, known or not (-1: unknown here), so that the collective is the same on all of them.
        var mostWaited = world.Allreduce(waitShare ?? -1.0, ReduceOp.Max);
        var knownEverywhere = world.Allreduce(waitShare is null ? 0 : 1, ReduceOp.Min) == 1;
        var info = new DicodProblemInfo(problem.K, problem.L, problem.P, problem.T, problem.Lambda, problem.LambdaMax(), o.Tol, o.Seed,
            o.SignalPath, o.DictionaryPath, o.SignalPath is null ? o.Density : double.NaN, o.SignalPath is null ? o.Noise : double.NaN);
        return new DicodResult(o.Solver, world.Size, info, problem.Objective(run.Run.Z), run.Run.Updates, run.Run.Seconds, run.Run.Converged,
            run.Run.Z.Count(v => v != 0), run.SubSegments, o.Solver == "dicod" ? o.Local : "", run.SegmentStarts, run.UpdatesPerRank,
            run.MessagesPerRank, run.SecondsPerRank, run.Probes, run.BetaDeviation, run.BetaScale, LoadAverage(), run.Run.Curve,
            knownEverywhere ? mostWaited : null);
    }

    private static DicodRun RunDicod(Communicator world, CscProblem problem, DicodOptions o)
    {
        var bounds = DicodWorker.SegmentBounds(problem.ActivationLength, world.Size);
        var shortest = Enumerable.Range(0, world.Size).Min(w => bounds[w + 1] - bounds[w]);
        var m = o.Local == "lgcd" ? SubSegmentsFor(shortest, problem.L, o) : 1;
        return DicodWorker.Run(world, problem, o.Tol, m, o.MaxUpdates);
    }

    private static int SubSegmentsFor(int length, int atomLength, DicodOptions o) =>
        o.SubSegments > 0 ? o.SubSegments : LocallyGreedy.DefaultSubSegments(length, atomLength);

    private static DicodRun Sequential(SolverRun run, int subSegments) =>
        new(run, [0], [run.Updates], [0], [run.Seconds], 0, subSegments, double.NaN, double.NaN);

    /// <summary>/proc/loadavg's first three fields (the machine may be shared: timings are read beside it).</summary>
    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }
}
