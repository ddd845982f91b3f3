using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Reflection;
using MpiPipeline.Benchmarks;
using MpiPipeline.Mpi;
using MpiPipeline.Scaling;

namespace MpiPipeline.Cli.Verbs;

/// <summary>
/// <c>mpipipe scaling</c>: a driver (one plain process, not an MPI job) that starts one `mpipipe train` job per rank
/// count, mode and repetition (srun inside a Slurm allocation, mpiexec elsewhere), then `mpipipe bench mpi` jobs, fits
/// the performance model and writes CSV, markdown and SVG plots to the output folder.
/// </summary>
internal static class ScalingVerb
{
    internal static Command Create()
    {
        var defaults = new ScalingOptions();
        var ranks = new Option<string>("--ranks") { Description = "Rank counts, e.g. 1,2,4,8 (the smallest is the baseline).", DefaultValueFactory = _ => "1,2,4" };
        var mode = new Option<string>("--mode") { Description = "strong (fixed global batch), weak (fixed per-rank batch), or both: strong,weak.", DefaultValueFactory = _ => "strong,weak" };
        var repetitions = new Option<int>("--repetitions") { Description = "Runs per rank count and mode (median and spread over them).", DefaultValueFactory = _ => defaults.Repetitions };
        var algorithm = new Option<string>("--algo") { Description = "psgd | local-sgd | ri-sgd", DefaultValueFactory = _ => defaults.Algorithm };
        var model = new Option<string>("--model") { Description = "mlp | cnn | deep-mlp:N", DefaultValueFactory = _ => defaults.Model };
        var globalBatch = new Option<int>("--global-batch") { Description = "Strong scaling: the global batch at every rank count.", DefaultValueFactory = _ => defaults.GlobalBatch };
        var perRankBatch = new Option<int>("--per-rank-batch") { Description = "Weak scaling: samples per rank per step.", DefaultValueFactory = _ => defaults.PerRankBatch };
        var steps = new Option<int>("--steps") { Description = "Training steps per run.", DefaultValueFactory = _ => defaults.Steps };
        var warmup = new Option<int>("--warmup-steps") { Description = "Leading steps not timed.", DefaultValueFactory = _ => defaults.WarmupSteps };
        var threads = new Option<int>("--threads") { Description = "libtorch threads per rank.", DefaultValueFactory = _ => defaults.ThreadsPerRank };
        var tau = new Option<int>("--tau") { Description = "local-sgd / ri-sgd runs and the local SGD projection: steps between averagings.", DefaultValueFactory = _ => defaults.Tau };
        var trainArgs = new Option<string?>("--train-args") { Description = "More `mpipipe train` arguments for every run, e.g. '--device cuda --lr 0.1'." };
        var launcher = new Option<string>("--launcher") { Description = "auto (srun inside a Slurm allocation, else mpiexec) | mpiexec | srun", DefaultValueFactory = _ => "auto" };
        var mpi = new Option<string>("--mpi") { Description = "mpich (mpiexec.mpich, srun --mpi=pmi2) | openmpi (mpirun.openmpi, srun --mpi=pmix)", DefaultValueFactory = _ => "mpich" };
        var srunMpi = new Option<string?>("--srun-mpi") { Description = "srun's --mpi plugin (default pmi2 for mpich, pmix for openmpi)." };
        var hostfile = new Option<string?>("--hostfile") { Description = "mpiexec hostfile (see hostfiles/; hostfiles/from-slurm.sh makes one from an allocation)." };
        var noBench = new Option<bool>("--no-bench") { Description = "Skip the MPI benchmark runs (and so the performance model)." };
        var benchRanks = new Option<string?>("--bench-ranks") { Description = "Rank counts for the Allreduce benchmark (default: every sweep rank count >= 2 within the cores)." };
        var benchMax = new Option<string?>("--bench-max-size") { Description = "Largest benchmark message (default: the gradient, rounded up)." };
        var benchSamples = new Option<int>("--bench-samples") { Description = "Timed samples per benchmark message size.", DefaultValueFactory = _ => defaults.BenchSamples };
        var project = new Option<string>("--project") { Description = "Rank counts the model projects to.", DefaultValueFactory = _ => string.Join(',', defaults.ProjectRanks) };
        var stages = new Option<int>("--stages") { Description = "Pipeline projection: stages.", DefaultValueFactory = _ => defaults.PipelineStages };
        var microBatches = new Option<int>("--micro-batches") { Description = "Pipeline projection: micro-batches per mini-batch.", DefaultValueFactory = _ => defaults.MicroBatches };
        var activation = new Option<long>("--activation-bytes") { Description = "Pipeline projection: bytes per sample sent across a stage boundary (each way).", DefaultValueFactory = _ => defaults.ActivationBytesPerSample };
        var network = new Option<string?>("--assume-network") { Description = "Also project with an assumed network: 'LATENCY_US,BANDWIDTH_GBPS', e.g. 2,12.5." };
        var output = new Option<string>("--out") { Description = "Folder for scaling.md, the CSV files and the plots.", DefaultValueFactory = _ => defaults.OutputDirectory };
        var work = new Option<string?>("--work") { Description = "Folder for each job's JSON and log (default: OUT/runs)." };
        var reuse = new Option<bool>("--reuse") { Description = "Use results already in the work folder instead of running those jobs again." };
        var timeout = new Option<int>("--timeout") { Description = "Seconds one job may take before it is killed.", DefaultValueFactory = _ => (int)defaults.RunTimeout.TotalSeconds };
        var commandLine = new Option<string?>("--command-line") { Description = "How the report names the command that made it (default: this command line)." };

        var command = new Command("scaling", "Strong and weak scaling sweep over rank counts (one job each, srun or mpiexec), a fitted alpha-beta performance model, projections; CSV, markdown and SVG plots.");
        foreach (var option in new Option[]
                 {
                     ranks, mode, repetitions, algorithm, model, globalBatch, perRankBatch, steps, warmup, threads, tau, trainArgs,
                     launcher, mpi, srunMpi, hostfile, noBench, benchRanks, benchMax, benchSamples, project, stages,
                     microBatches, activation, network, output, work, reuse, timeout, commandLine,
                 })
        {
            command.Options.Add(option);
        }

        algorithm.AcceptOnlyFromAmong([.. ScalingOptions.Algorithms]);
        launcher.AcceptOnlyFromAmong("auto", "mpiexec", "srun");
        mpi.AcceptOnlyFromAmong("mpich", "openmpi");
        command.Validators.Add(result =>
        {
            foreach (var (option, name) in new[] { (ranks, "--ranks"), (project, "--project") })
            {
                if (ScalingOptions.ParseIntList(result.GetValue(option) ?? option.DefaultValueFactory!(null!), name, out var error) is null)
                {
                    result.AddError(error);
                }
            }

            if (result.GetValue(benchRanks) is { } list && ScalingOptions.ParseIntList(list, "--bench-ranks", out var benchError) is null)
            {
                result.AddError(benchError);
            }

            if (ParseModes(result.GetValue(mode) ?? "strong,weak") is null)
            {
                result.AddError($"--mode: '{result.GetValue(mode)}' is not strong, weak or strong,weak");
            }

            if (result.GetValue(benchMax) is { } size && !MessageSizes.TryParse(size, out _, out var sizeError))
            {
                result.AddError($"--bench-max-size: {sizeError}");
            }

            if (result.GetValue(network) is { } net && ParseNetwork(net) is null)
            {
                result.AddError($"--assume-network: '{net}' is not 'LATENCY_US,BANDWIDTH_GBPS' (e.g. 2,12.5)");
            }
        });

        command.SetAction(parse =>
        {
            var options = new ScalingOptions
            {
                Ranks = ScalingOptions.ParseIntList(parse.GetValue(ranks), "--ranks", out _)!,
                Modes = ParseModes(parse.GetValue(mode)!)!,
                Repetitions = parse.GetValue(repetitions),
                Algorithm = parse.GetValue(algorithm)!,
                Model = parse.GetValue(model)!,
                GlobalBatch = parse.GetValue(globalBatch),
                PerRankBatch = parse.GetValue(perRankBatch),
                Steps = parse.GetValue(steps),
                WarmupSteps = parse.GetValue(warmup),
                ThreadsPerRank = parse.GetValue(threads),
                Tau = parse.GetValue(tau),
                TrainArguments = (parse.GetValue(trainArgs) ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries),
                Launcher = parse.GetValue(launcher) switch { "mpiexec" => LauncherKind.Mpiexec, "srun" => LauncherKind.Srun, _ => LauncherKind.Auto },
                Mpi = parse.GetValue(mpi) == "openmpi" ? MpiFlavor.OpenMpi : MpiFlavor.Mpich,
                SrunMpi = parse.GetValue(srunMpi),
                Hostfile = parse.GetValue(hostfile),
                Bench = !parse.GetValue(noBench),
                BenchRanks = parse.GetValue(benchRanks) is { } b ? ScalingOptions.ParseIntList(b, "--bench-ranks", out _) : null,
                BenchMaxBytes = parse.GetValue(benchMax) is { } m && MessageSizes.TryParse(m, out var bytes, out _) ? bytes : null,
                BenchSamples = parse.GetValue(benchSamples),
                ProjectRanks = ScalingOptions.ParseIntList(parse.GetValue(project), "--project", out _)!,
                PipelineStages = parse.GetValue(stages),
                MicroBatches = parse.GetValue(microBatches),
                ActivationBytesPerSample = parse.GetValue(activation),
                AssumedNetwork = parse.GetValue(network) is { } n ? ParseNetwork(n) : null,
                OutputDirectory = parse.GetValue(output)!,
                WorkDirectory = parse.GetValue(work),
                Reuse = parse.GetValue(reuse),
                RunTimeout = TimeSpan.FromSeconds(parse.GetValue(timeout)),
                CommandLine = parse.GetValue(commandLine) ?? "mpipipe " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
            };
            try
            {
                return Run(options);
            }
            catch (InputException ex)
            {
                Console.Error.WriteLine($"mpipipe scaling: {ex.Message}");
                return ex.ExitCode;
            }
        });
        return command;
    }

    private static int Run(ScalingOptions options)
    {
        options.Validate();
        var launcher = JobLauncher.Create(options, ProgramCommand(), JobLauncher.CurrentEnvironment());
        var machine = ScalingMachine.Current(launcher.Describe(), launcher.Cores);
        Console.Out.WriteLine($"scaling: {options.Algorithm}, model {options.Model}, ranks {string.Join(", ", options.Ranks)}, " +
                              $"{string.Join(" and ", options.Modes.Select(ScalingCsv.ModeName))} scaling, {options.Repetitions} repetition(s); jobs: {launcher.Describe()}");
        var data = ScalingSweep.Run(options, launcher, new ConsoleScalingReporter());
        var points = ScalingPoint.Summarize(data.Runs);
        var model = PerformanceModel.Fit(data.Runs, data.Allreduce, data.PingPong, out var why);
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
            var errors = model.Validate(points).Select(v => Math.Abs(v.StepError)).ToList();
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"model: Allreduce alpha {model.Allreduce.Alpha * 1e6:F2} us, {model.Allreduce.Bandwidth / 1e9:F2} GB/s; point-to-point alpha {model.PointToPoint.Alpha * 1e6:F2} us, {model.PointToPoint.Bandwidth / 1e9:F2} GB/s; " +
                $"compute {model.Compute.Fixed * 1e3:F3} ms + {model.Compute.PerSample * 1e6:F2} us/sample; step-time error median {100 * ScalingMath.Median(errors):F1}%, max {100 * errors.Max():F1}%"));
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

    private static IReadOnlyList<ScalingMode>? ParseModes(string text)
    {
        var modes = new List<ScalingMode>();
        foreach (var word in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            ScalingMode? parsed = word switch { "strong" => ScalingMode.Strong, "weak" => ScalingMode.Weak, _ => null };
            if (parsed is not { } mode || modes.Contains(mode))
            {
                return null;
            }

            modes.Add(mode);
        }

        return modes.Count > 0 ? modes : null;
    }

    /// <summary>"2,12.5" -> (2e-6 s, 12.5e9 B/s).</summary>
    private static (double Alpha, double Bandwidth)? ParseNetwork(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        return parts.Length == 2
               && double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var us)
               && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var gbps)
               && us >= 0 && gbps > 0
            ? (us * 1e-6, gbps * 1e9)
            : null;
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
