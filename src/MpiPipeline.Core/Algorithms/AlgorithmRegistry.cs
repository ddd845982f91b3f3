using MpiPipeline.DataParallel;
using MpiPipeline.Engines;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;
using MpiPipeline.Training;

namespace MpiPipeline.Algorithms;

/// <summary>An option that belongs to some algorithms only: its flag and whether a run's options give it.</summary>
internal sealed record AlgorithmOption(string Flag, Func<TrainOptions, bool> IsGiven);

/// <summary>
/// One <c>--algo</c>: its name, one-line help, the options it owns (given with another algorithm they are an error),
/// its own validation against the world size, how its data is split by default, how the header names a run of it,
/// and the factory of its engine. Each algorithm declares its registration in its own file.
/// </summary>
internal sealed record AlgorithmRegistration(
    string Name,
    string Help,
    IReadOnlyList<AlgorithmOption> Options,
    Func<TrainingContext, ITrainingEngine> CreateEngine)
{
    /// <summary>Its own checks of <see cref="TrainOptions"/> against the world size (the common ones are done before).</summary>
    public Action<TrainOptions, int> Validate { get; init; } = (_, _) => { };

    public DataSplit DefaultSplit { get; init; } = DataSplit.Shuffle;

    /// <summary>The run as the header names it, e.g. "local-sgd (tau = 4)"; given the options and the worker count.</summary>
    public Func<TrainOptions, int, string> Describe { get; init; } = (o, _) => o.Algorithm;

    /// <summary>True for the engines whose ranks each hold a whole replica and average with their peers.</summary>
    public bool DataParallel { get; init; }
}

/// <summary>Every <c>--algo</c>, in the order help lists them. A new algorithm is one file plus its line here.</summary>
internal static class AlgorithmRegistry
{
    public static IReadOnlyList<AlgorithmRegistration> All { get; } =
    [
        Psgd.Single,
        Psgd.Registration,
        LocalSgd.Registration,
        RiSgd.Registration,
        PipelineEngine.Registration,
        Async.DasgdEngine.Registration,
        Layerwise.LayerwiseEngine.Registration,
    ];

    public static IReadOnlyList<string> Names { get; } = [.. All.Select(a => a.Name)];

    /// <summary>The data-parallel ones (compare and the scaling sweep run these).</summary>
    public static IReadOnlyList<string> DataParallelNames { get; } = [.. All.Where(a => a.DataParallel).Select(a => a.Name)];

    /// <summary>Trains with the algorithm the options name (on every rank); null on a rank that left the run.</summary>
    public static RunResult? Train(Communicator world, TrainOptions options, ITrainingReporter? reporter) =>
        TrainingLoop.Run(world, options, context => Find(options.Algorithm).CreateEngine(context), reporter);

    public static AlgorithmRegistration Find(string name) =>
        All.FirstOrDefault(a => a.Name == name)
        ?? throw new InputException($"unknown --algo '{name}'; known: {string.Join(", ", Names)}");

    /// <summary>The algorithms that own an option (<see cref="AlgorithmRegistration.Options"/>), by its flag.</summary>
    public static IEnumerable<string> OwnersOf(string flag) => All.Where(a => a.Options.Any(o => o.Flag == flag)).Select(a => a.Name);

    /// <summary>Options owned by other algorithms and given with this one are an error naming their owners.</summary>
    public static void RejectForeignOptions(TrainOptions options)
    {
        var own = Find(options.Algorithm).Options.Select(o => o.Flag).ToHashSet();
        if (All.SelectMany(a => a.Options).FirstOrDefault(o => !own.Contains(o.Flag) && o.IsGiven(options)) is { Flag: var flag })
        {
            throw new InputException($"{flag} applies to --algo {string.Join(", ", OwnersOf(flag))} only (got --algo {options.Algorithm})");
        }
    }
}
