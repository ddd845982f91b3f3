using System.CommandLine;
using System.Globalization;
using MpiPipeline.Benchmarks;
using MpiPipeline.Data;
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
        var table = Options();
        var command = new Command("bridge",
            "Training step time through the libtorch bridge (Worker.ComputeGradient + OptimizerStep), one rank; " +
            "compare with bench/bridge/bridge_bench.cpp.");

        // Every value is checked at parse time, before MPI starts: a bad one is a usage error (exit 2), printed once.
        table.AddTo(command, options => options.Problems());
        command.SetAction(parse =>
        {
            var benchmark = table.Read(parse);
            return MpiRuntime.Run(world => Run(world, benchmark with
            {
                Threads = TorchRuntime.ChooseThreads(table.Given(parse, "--threads") ? benchmark.Threads : null, benchmark.Threads),
            }));
        });
        return command;
    }

    /// <summary>The options, with <see cref="BridgeBenchmarkOptions"/>' defaults (the C++ baseline's too).</summary>
    internal static OptionTable<BridgeBenchmarkOptions> Options()
    {
        var t = new OptionTable<BridgeBenchmarkOptions>();
        t.Add("--model", "mlp | cnn (the two the C++ baseline knows) | deep-mlp:N", o => o.Model, (o, v) => o with { Model = v });
        t.Add("--threads", "libtorch intra-op threads.", o => o.Threads, (o, v) => o with { Threads = v });
        t.Add("--steps", "Timed training steps.", o => o.TimedSteps, (o, v) => o with { TimedSteps = v });
        t.Add("--warmup", "Untimed training steps before them.", o => o.WarmupSteps, (o, v) => o with { WarmupSteps = v });
        t.Add("--batch", "Mini-batch.", o => o.Batch, (o, v) => o with { Batch = v });
        t.Add("--lr", "SGD learning rate.", o => o.LearningRate, (o, v) => o with { LearningRate = v });
        t.Add("--momentum", "SGD momentum.", o => o.Momentum, (o, v) => o with { Momentum = v });
        t.Add("--seed", "Seed of initialization and data order.", o => o.Seed, (o, v) => o with { Seed = v });
        t.Add("--device", "cpu or cuda:N (the C++ baseline: cpu only).", o => o.Device, (o, v) => o with { Device = v });
        t.Add("--dataset", $"fashion-mnist (the C++ baseline's) or {SyntheticImagesName} of the same geometry where the files are not at hand.",
            o => o.DataSet, (o, v) => o with { DataSet = v });
        t.Add("--data", $"Directory of the Fashion-MNIST IDX files (default {FashionMnist.DefaultDirectory}).", o => o.DataDirectory, (o, v) => o with { DataDirectory = v });
        return t;
    }

    private const string SyntheticImagesName = "synthetic:1x28x28:10";

    private static int Run(Communicator world, BridgeBenchmarkOptions options)
    {
        var result = BridgeBenchmark.Run(world, options);
        var facts = TorchRuntime.Describe();
        var lr = options.LearningRate.ToString(CultureInfo.InvariantCulture);
        var momentum = options.Momentum.ToString(CultureInfo.InvariantCulture);
        RankConsole.Line($"# mpipipe bench bridge (C#): model {options.Model}, threads {result.Threads}, batch {options.Batch}, " +
            $"{options.WarmupSteps} warm-up + {options.TimedSteps} timed steps, seed {options.Seed}, SGD lr {lr} momentum {momentum} " +
            $"(the bridge's flat-buffer SGD), device {options.Device}, data {options.DataSet}");
        RankConsole.Line($"# libtorch {TorchRuntime.LibtorchVersion}; malloc tuning: {facts["malloc tuning"]}; BLAS: {facts["BLAS"]}");
        var p = result.PercentileMilliseconds.Select(v => v.ToString("F4", CultureInfo.InvariantCulture)).ToArray();
        RankConsole.Line($"# step time percentiles (ms): p10 {p[0]} p25 {p[1]} p50 {p[2]} p75 {p[3]} p90 {p[4]}");
        RankConsole.Line($"# per timed step: sampler + batch gather (TorchRuntime.GatherRows, labels) {result.DataMicroseconds.ToString("F1", CultureInfo.InvariantCulture)} us (mean)");
        RankConsole.Line(BridgeBenchmarkResult.RawHeader);
        RankConsole.Line(result.RawLine);
        return 0;
    }
}
