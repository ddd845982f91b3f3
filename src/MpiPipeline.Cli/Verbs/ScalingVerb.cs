using System.CommandLine;
using System.Globalization;
using System.Reflection;
using MpiPipeline.Algorithms;
using MpiPipeline.Benchmarks;
using MpiPipeline.Mpi;
using MpiPipeline.Scaling;
using MpiPipeline.Training;

namespace MpiPipeline.Cli.Verbs;

/// <summary>
/// <c>mpipipe scaling</c>: a driver (one plain process, not an MPI job) that starts one `mpipipe train` job per rank
/// count, mode and repetition (srun inside a Slurm allocation, mpiexec elsewhere), then `mpipipe bench mpi` jobs, fits
/// the performance model and writes CSV, markdown and SVG plots to the output folder.
/// </summary>
internal static class ScalingVerb
{
    // A value that does not convert (a list, a size, a network) is a usage error at parse time (exit 2); the sweep's
    // own checks (ScalingOptions.Validate) come before any job (exit 1).
    internal static Command Create() => PlainVerb.Create("scaling",
        "Strong and weak scaling sweep over rank counts (one job each, srun or mpiexec), a fitted alpha-beta performance model, projections; CSV, markdown and SVG plots.",
        Options(), _ => [],
        options => Run(options with { CommandLine = options.CommandLine ?? "mpipipe " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)) }));

    /// <summary>The options of <see cref="ScalingOptions"/>, with its defaults.</summary>
    internal static OptionTable<ScalingOptions> Options()
    {
        var t = new OptionTable<ScalingOptions>();
        t.Add("--ranks", "Rank counts, e.g. 1,2,4,8 (the smallest is the baseline).", o => string.Join(',', o.Ranks), (o, v) => o with { Ranks = ParseIntList(v, "--ranks") });
        t.Add("--mode", "strong (fixed global batch), weak (fixed per-rank batch), or both: strong,weak.", o => string.Join(',', o.Modes.Select(ScalingCsv.ModeName)),
            (o, v) => o with { Modes = ParseModes(v) });
        t.Add("--repetitions", "Runs per rank count and mode (median and spread over them).", o => o.Repetitions, (o, v) => o with { Repetitions = v });
        t.Add(TrainFlags.Algorithm, string.Join(" | ", AlgorithmRegistry.DataParallelNames), o => o.Algorithm, (o, v) => o with { Algorithm = v })
            .AcceptOnlyFromAmong([.. AlgorithmRegistry.DataParallelNames]);
        t.Add(TrainFlags.Model, "mlp | cnn | deep-mlp:N", o => o.Model, (o, v) => o with { Model = v });
        t.Add("--global-batch", "Strong scaling: the global batch at every rank count.", o => o.GlobalBatch, (o, v) => o with { GlobalBatch = v });
        t.Add("--per-rank-batch", "Weak scaling: samples per rank per step.", o => o.PerRankBatch, (o, v) => o with { PerRankBatch = v });
        t.Add("--steps", "Training steps per run.", o => o.Steps, (o, v) => o with { Steps = v });
        t.Add("--warmup-steps", "Leading steps not timed.", o => o.WarmupSteps, (o, v) => o with { WarmupSteps = v });
        t.Add(TrainFlags.Threads, "libtorch threads per rank.", o => o.ThreadsPerRank, (o, v) => o with { ThreadsPerRank = v });
        t.Add(TrainFlags.Tau, $"{string.Join(" / ", AlgorithmRegistry.OwnersOf(TrainFlags.Tau))} runs and the local SGD projection: steps between averagings.", o => o.Tau, (o, v) => o with { Tau = v });
        t.Add("--train-args", $"More `mpipipe {TrainFlags.Verb}` arguments for every run, e.g. '{TrainFlags.Device} cuda {TrainFlags.LearningRate} 0.1'.",
            o => o.TrainArguments.Count > 0 ? string.Join(' ', o.TrainArguments) : null,
            (o, v) => o with { TrainArguments = (v ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries) });
        t.Choice("--launcher", "auto (srun inside a Slurm allocation, else mpiexec) | mpiexec | srun",
            [("auto", LauncherKind.Auto), ("mpiexec", LauncherKind.Mpiexec), ("srun", LauncherKind.Srun)], o => o.Launcher, (o, v) => o with { Launcher = v });
        t.Choice("--mpi", "mpich (mpiexec.mpich, srun --mpi=pmi2) | openmpi (mpirun.openmpi, srun --mpi=pmix)",
            [("mpich", MpiFlavor.Mpich), ("openmpi", MpiFlavor.OpenMpi)], o => o.Mpi, (o, v) => o with { Mpi = v });
        t.Add("--srun-mpi", "srun's --mpi plugin (default pmi2 for mpich, pmix for openmpi).", o => o.SrunMpi, (o, v) => o with { SrunMpi = v });
        t.Add("--hostfile", "mpiexec hostfile (see hostfiles/; hostfiles/from-slurm.sh makes one from an allocation).", o => o.Hostfile, (o, v) => o with { Hostfile = v });
        t.Add("--no-bench", "Skip the MPI benchmark runs (and so the performance model).", o => !o.Bench, (o, v) => o with { Bench = !v });
        t.Add("--bench-ranks", "Rank counts for the Allreduce benchmark (default: every sweep rank count >= 2 within the cores).",
            o => o.BenchRanks is { } ranks ? string.Join(',', ranks) : null, (o, v) => o with { BenchRanks = v is null ? null : ParseIntList(v, "--bench-ranks") });
        t.Add("--bench-max-size", "Largest benchmark message (default: the gradient, rounded up).", o => o.BenchMaxBytes?.ToString(CultureInfo.InvariantCulture),
            (o, v) => o with { BenchMaxBytes = v is null ? null : MessageSizes.TryParse(v, out var bytes, out var error) ? bytes : throw new InputException($"--bench-max-size: {error}") });
        t.Add("--bench-samples", "Timed samples per benchmark message size.", o => o.BenchSamples, (o, v) => o with { BenchSamples = v });
        t.Add("--project", "Rank counts the model projects to.", o => string.Join(',', o.ProjectRanks), (o, v) => o with { ProjectRanks = ParseIntList(v, "--project") });
        t.Add("--stages", "Pipeline projection: stages.", o => o.PipelineStages, (o, v) => o with { PipelineStages = v });
        t.Add("--micro-batches", "Pipeline projection: micro-batches per mini-batch.", o => o.MicroBatches, (o, v) => o with { MicroBatches = v });
        t.Add("--activation-bytes", "Pipeline projection: bytes per sample sent across a stage boundary (each way).", o => o.ActivationBytesPerSample, (o, v) => o with { ActivationBytesPerSample = v });
        t.Add("--network", "Run every job inside an emulated network: this machine's loopback shaped to RATE (tc words: 1gbit, 2.5gbit; none = unshaped TCP) with an optional one-way DELAY (50us), e.g. 10gbit,50us. One link all ranks share; measured, not modelled. Needs root or CAP_NET_ADMIN and tc (bench/network/emulate.sh); best with --mpi openmpi.",
            o => o.Network?.ToString(), (o, v) => o with { Network = v is null ? null : EmulatedNetwork.Parse(v) });
        t.Add("--assume-network", "Also project with an assumed network: 'LATENCY_US,BANDWIDTH_GBPS', e.g. 2,12.5. Modelled only (no run crosses it); --network measures on an emulated one.",
            o => o.AssumedNetwork is { } net ? string.Create(CultureInfo.InvariantCulture, $"{net.Alpha * 1e6},{net.Bandwidth / 1e9}") : null,
            (o, v) => o with { AssumedNetwork = v is null ? null : ParseNetwork(v) });
        t.Add("--out", "Folder for scaling.md, the CSV files and the plots.", o => o.OutputDirectory, (o, v) => o with { OutputDirectory = v });
        t.Add("--work", "Folder for each job's JSON and log (default: OUT/runs).", o => o.WorkDirectory, (o, v) => o with { WorkDirectory = v });
        t.Add("--reuse", "Use results already in the work folder instead of running those jobs again.", o => o.Reuse, (o, v) => o with { Reuse = v });
        t.Add("--timeout", "Seconds one job may take before it is killed.", o => (int)o.RunTimeout.TotalSeconds, (o, v) => o with { RunTimeout = TimeSpan.FromSeconds(v) });
        t.Add("--command-line", "How the report names the command that made it (default: this command line).", o => o.CommandLine, (o, v) => o with { CommandLine = v });
        return t;
    }

    private static int Run(ScalingOptions options)
    {
        options.Validate();

        // The report and the jobs' files: a folder the sweep cannot write fails before the first job, not after the last.
        Telemetry.AtomicFile.CheckWritable(Path.Combine(options.OutputDirectory, ScalingReport.MarkdownFile), "--out");
        Telemetry.AtomicFile.CheckWritable(Path.Combine(options.EffectiveWorkDirectory, "probe.json"), options.WorkDirectory is null ? "--out" : "--work");
        var launcher = JobLauncher.Create(options, ProgramCommand(), JobLauncher.CurrentEnvironment());
        var machine = ScalingMachine.Current(launcher.Describe(), launcher.Cores);
        Console.Out.WriteLine($"scaling: {options.Algorithm}, model {options.Model}, ranks {string.Join(", ", options.Ranks)}, " +
                              $"{string.Join(" and ", options.Modes.Select(ScalingCsv.ModeName))} scaling, {options.Repetitions} repetition(s); jobs: {launcher.Describe()}");
        var data = ScalingSweep.Run(options, launcher, new ConsoleScalingReporter());
        var points = ScalingPoint.Summarize(data.Runs);
        var model = PerformanceModel.Fit(data.Runs, data.Allreduce, data.PingPong, options.Topology, out var why);
        var written = ScalingReport.Write(options, machine, data, points, model, model is null ? why : null);

        var table = new Telemetry.MarkdownTable("mode", "ranks", "batch/rank", "samples/s", "spread", "speedup", "efficiency", "comm share", "oversubscribed");
        foreach (var p in points)
        {
            table.AddRow(ScalingCsv.ModeName(p.Mode), I(p.Ranks), I(p.PerRankBatch), F(p.ThroughputMedian, 0), F(p.SpreadPercent, 1) + "%",
                F(p.Speedup, 2) + "x", F(100 * p.Efficiency, 1) + "%", F(100 * p.CommunicationShare, 1) + "%", p.Oversubscribed ? "yes" : "no");
        }

        Console.Out.WriteLine();
        Console.Out.Write(table.ToString());
        if (model is not null)
        {
            var checks = model.Validate(points);
            var errors = checks.Select(v => Math.Abs(v.StepError)).ToList();
            var communication = checks.Select(v => Math.Abs(v.CommunicationError)).Where(double.IsFinite).ToList();
            var shared = model.Topology == LinkTopology.Shared ? " (one link shared by the ranks)" : "";
            var communicationError = communication.Count > 0
                ? string.Create(CultureInfo.InvariantCulture, $"; communication error median {100 * ScalingMath.Median(communication):F1}%, max {100 * communication.Max():F1}%")
                : "";
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"model: Allreduce alpha {model.Allreduce.Alpha * 1e6:F2} us, {model.Allreduce.Bandwidth / 1e9:F3} GB/s{shared}; point-to-point alpha {model.PointToPoint.Alpha * 1e6:F2} us, {model.PointToPoint.Bandwidth / 1e9:F3} GB/s; " +
                $"compute {model.Compute.Fixed * 1e3:F3} ms + {model.Compute.PerSample * 1e6:F2} us/sample; step-time error median {100 * ScalingMath.Median(errors):F1}%, max {100 * errors.Max():F1}%{communicationError}"));
        }
        else
        {
            Console.Out.WriteLine($"model: not fitted ({why})");
        }

        foreach (var note in data.Notes)
        {
            Console.Out.WriteLine($"note: {note}");
        }

        Console.Out.WriteLine($"wrote {string.Join(", ", written)}");
        return 0;
    }

    /// <summary>How the jobs start mpipipe: this program's own path, or dotnet and its dll when run through dotnet.</summary>
    private static string[] ProgramCommand()
    {
        var process = Environment.ProcessPath ?? "mpipipe";
        var dll = Assembly.GetEntryAssembly()?.Location;
        return Path.GetFileNameWithoutExtension(process) == "dotnet" && !string.IsNullOrEmpty(dll) ? [process, dll] : [process];
    }

    /// <summary>Parses "1,2,4" (or "1 2 4"); a word that is not an integer, or no word, is an error naming the option.</summary>
    internal static IReadOnlyList<int> ParseIntList(string text, string option)
    {
        var words = text.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (words.Length == 0)
        {
            throw new InputException($"{option}: empty list (expected a list such as 1,2,4)");
        }

        return [.. words.Select(word => int.TryParse(word, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new InputException($"{option}: '{word}' is not an integer (expected a list such as 1,2,4)"))];
    }

    /// <summary>"strong", "weak" or both, comma-separated, each once.</summary>
    private static IReadOnlyList<ScalingMode> ParseModes(string text)
    {
        var modes = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(word => word switch { "strong" => ScalingMode.Strong, "weak" => ScalingMode.Weak, _ => (ScalingMode?)null }).ToList();
        return modes.Count > 0 && !modes.Contains(null) && modes.Distinct().Count() == modes.Count
            ? [.. modes.Select(mode => mode!.Value)]
            : throw new InputException($"--mode: '{text}' is not strong, weak or strong,weak");
    }

    /// <summary>"2,12.5" -> (2e-6 s, 12.5e9 B/s).</summary>
    private static (double Alpha, double Bandwidth) ParseNetwork(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        return parts.Length == 2
               && double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var us)
               && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var gbps)
               && us >= 0 && gbps > 0
            ? (us * 1e-6, gbps * 1e9)
            : throw new InputException($"--assume-network: '{text}' is not 'LATENCY_US,BANDWIDTH_GBPS' (e.g. 2,12.5)");
    }

    private static string I(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string F(double value, int digits) => value.ToString("F" + digits, CultureInfo.InvariantCulture);

    /// <summary>One line when a job starts (with its command) and one when it ends.</summary>
    private sealed class ConsoleScalingReporter : IScalingReporter
    {
        public void Starting(string what, string commandLine)
        {
            Console.Out.WriteLine($"{what}: {commandLine}");
            Console.Out.Flush();
        }

        public void Finished(string what, string summary)
        {
            Console.Out.WriteLine($"  -> {summary}");
            Console.Out.Flush();
        }

        public void Notice(string message)
        {
            Console.Out.WriteLine($"note: {message}");
            Console.Out.Flush();
        }
    }
}
