using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using MpiPipeline.Benchmarks;
using MpiPipeline.Mpi;
using MpiPipeline.Torch;

namespace MpiPipeline.Cli.Verbs;

/// <summary>
/// <c>mpipipe bench bridge</c>: single-rank training steps through the libtorch bridge, timed, in the format of the
/// pure C++ loop bench/bridge/bridge_bench.cpp (same flags, same defaults), which is its limit. One process; run
/// without mpiexec (MPI starts as a singleton) or with -n 1.
/// </summary>
internal static class BenchBridgeVerb
{
    internal static Command Create()
    {
        var options = new BenchBridgeOptionSet();
        var command = new Command("bridge",
            "Training step time through the libtorch bridge (Worker.ComputeGradient + OptimizerStep), one rank; " +
            "compare with bench/bridge/bridge_bench.cpp.");
        options.AddTo(command);

        // Every value is checked at parse time, before MPI starts: a bad one is a usage error (exit 2), printed once.
        command.Validators.Add(result =>
        {
            foreach (var problem in options.Read(result).Problems())
            {
                result.AddError(problem);
            }
        });
        command.SetAction(parse =>
        {
            var benchmark = options.Read(parse);
            return MpiRuntime.Run(world => Run(world, benchmark));
        });
        return command;
    }

    private static int Run(Communicator world, BridgeBenchmarkOptions options)
    {
        var result = BridgeBenchmark.Run(world, options);
        var facts = TorchRuntime.Describe();
        var lr = options.LearningRate.ToString(CultureInfo.InvariantCulture);
        var momentum = options.Momentum.ToString(CultureInfo.InvariantCulture);
        RankConsole.Line($"# mpipipe bench bridge (C#): model {options.Model}, threads {result.Threads}, batch {options.Batch}, " +
            $"{options.WarmupSteps} warm-up + {options.TimedSteps} timed steps, seed {options.Seed}, SGD lr {lr} momentum {momentum} " +
            "(the bridge's flat-buffer SGD)");
        RankConsole.Line($"# libtorch {TorchRuntime.LibtorchVersion}; malloc tuning: {facts["malloc tuning"]}; BLAS: {facts["BLAS"]}");
        var p = result.PercentileMilliseconds.Select(v => v.ToString("F4", CultureInfo.InvariantCulture)).ToArray();
        RankConsole.Line($"# step time percentiles (ms): p10 {p[0]} p25 {p[1]} p50 {p[2]} p75 {p[3]} p90 {p[4]}");
        RankConsole.Line($"# per timed step: sampler + batch gather (TorchRuntime.GatherRows, labels) {result.DataMicroseconds.ToString("F1", CultureInfo.InvariantCulture)} us (mean)");
        RankConsole.Line(BridgeBenchmarkResult.RawHeader);
        RankConsole.Line(result.RawLine);
        return 0;
    }
}

/// <summary>The options of <c>bench bridge</c>, with <see cref="BridgeBenchmarkOptions"/>' defaults (the C++ baseline's too).</summary>
internal sealed class BenchBridgeOptionSet
{
    private static readonly BridgeBenchmarkOptions Defaults = new();

    private readonly Option<string> model = new("--model") { Description = "mlp | cnn (the two the C++ baseline knows) | deep-mlp:N", DefaultValueFactory = _ => Defaults.Model };
    private readonly Option<int> threads = new("--threads") { Description = "libtorch intra-op threads.", DefaultValueFactory = _ => Defaults.Threads };
    private readonly Option<int> steps = new("--steps") { Description = "Timed training steps.", DefaultValueFactory = _ => Defaults.TimedSteps };
    private readonly Option<int> warmup = new("--warmup") { Description = "Untimed training steps before them.", DefaultValueFactory = _ => Defaults.WarmupSteps };
    private readonly Option<int> batch = new("--batch") { Description = "Mini-batch.", DefaultValueFactory = _ => Defaults.Batch };
    private readonly Option<double> learningRate = new("--lr") { Description = "SGD learning rate.", DefaultValueFactory = _ => Defaults.LearningRate };
    private readonly Option<double> momentum = new("--momentum") { Description = "SGD momentum.", DefaultValueFactory = _ => Defaults.Momentum };
    private readonly Option<long> seed = new("--seed") { Description = "Seed of initialization and data order.", DefaultValueFactory = _ => Defaults.Seed };
    private readonly Option<string?> data = new("--data") { Description = "Directory of the Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist)." };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { model, threads, steps, warmup, batch, learningRate, momentum, seed, data })
        {
            command.Options.Add(option);
        }
    }

    /// <summary>Inside a validator (defaults are not filled in yet there; see <see cref="BenchVerb.ValueOf"/>).</summary>
    public BridgeBenchmarkOptions Read(CommandResult result) => new()
    {
        Model = BenchVerb.ValueOf(result, model) ?? Defaults.Model,
        Threads = BenchVerb.ValueOf(result, threads),
        TimedSteps = BenchVerb.ValueOf(result, steps),
        WarmupSteps = BenchVerb.ValueOf(result, warmup),
        Batch = BenchVerb.ValueOf(result, batch),
        LearningRate = BenchVerb.ValueOf(result, learningRate),
        Momentum = BenchVerb.ValueOf(result, momentum),
        Seed = BenchVerb.ValueOf(result, seed),
        DataDirectory = BenchVerb.ValueOf(result, data),
    };

    public BridgeBenchmarkOptions Read(ParseResult parse) => new()
    {
        Model = parse.GetValue(model) ?? Defaults.Model,
        Threads = parse.GetValue(threads),
        TimedSteps = parse.GetValue(steps),
        WarmupSteps = parse.GetValue(warmup),
        Batch = parse.GetValue(batch),
        LearningRate = parse.GetValue(learningRate),
        Momentum = parse.GetValue(momentum),
        Seed = parse.GetValue(seed),
        DataDirectory = parse.GetValue(data),
    };
}
