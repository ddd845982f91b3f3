using System.CommandLine;
using System.Globalization;
using System.Text;
using MpiPipeline.Algorithms;
using MpiPipeline.DataParallel;
using MpiPipeline.Exchange.Compression;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;
using MpiPipeline.Training;

namespace MpiPipeline.Cli.Verbs;

/// <summary>
/// <c>mpipipe compare</c>: the comparison the RI-SGD slides make, on one model, data set, rank count and number of
/// epochs: PSGD, local SGD with tau = 4 and 16, RI-SGD with q = 2 and tau = 16. Writes a markdown table and plots of
/// the training loss against communication rounds and against wall time; then the same algorithms on non-i.i.d.
/// chunks (<see cref="NonIidComparison"/>) in a section of the same file.
/// </summary>
internal static class CompareVerb
{
    /// <summary>The runs compared: (label, algorithm, tau, q).</summary>
    internal static readonly (string Label, string Algorithm, int Tau, int Redundancy)[] Runs =
    [
        ("PSGD", Psgd.Registration.Name, 1, 1),
        ("local SGD, tau = 4", LocalSgd.Registration.Name, 4, 1),
        ("local SGD, tau = 16", LocalSgd.Registration.Name, 16, 1),
        ("RI-SGD, q = 2, tau = 16", RiSgd.Registration.Name, 16, 2),
    ];

    internal static Command Create()
    {
        var table = TrainOptionTable.Common();
        var output = new Option<string>("--out") { Description = "Directory for compare.md, the plots and each run's JSON.", DefaultValueFactory = _ => "bench/results" };
        var nonIidSteps = new Option<long>("--non-iid-steps") { Description = "Non-i.i.d. part (--split chunks-by-class, RI-SGD q = 1, 2, 3): steps of every run.", DefaultValueFactory = _ => NonIidSettings.Default.Steps };
        var nonIidTau = new Option<int>("--non-iid-tau") { Description = "Non-i.i.d. part: tau of every run.", DefaultValueFactory = _ => NonIidSettings.Default.Tau };
        var nonIidSeeds = new Option<int>("--non-iid-seeds") { Description = "Non-i.i.d. part: seeds per q (seed, seed + 1, ...); 0 skips the part.", DefaultValueFactory = _ => NonIidSettings.Default.Seeds };
        var compressors = CompressorsOption("Also PSGD with each of these gradient compressors (--compress values), one row each.");
        var command = new Command("compare", "PSGD vs local SGD (tau = 4, 16) vs RI-SGD (q = 2, tau = 16), and PSGD with gradient compressors: same model, data, ranks and epochs; a table and plots; then the non-i.i.d. part.");
        table.AddTo(command);
        command.Options.Add(output);
        command.Options.Add(compressors);
        command.Options.Add(nonIidSteps);
        command.Options.Add(nonIidTau);
        command.Options.Add(nonIidSeeds);
        command.SetAction(parse =>
        {
            var baseOptions = table.Read(parse);
            var directory = parse.GetValue(output)!;
            var specs = parse.GetValue(compressors) ?? [];
            var nonIid = NonIidSettings.Default with { Steps = parse.GetValue(nonIidSteps), Tau = parse.GetValue(nonIidTau), Seeds = parse.GetValue(nonIidSeeds) };
            return MpiRuntime.Run(world => Run(world, baseOptions, nonIid, directory, specs));
        });
        return command;
    }

    /// <summary><c>--compressors SPEC...</c>: --compress values, each checked at parsing (a usage error naming the option).</summary>
    internal static Option<string[]> CompressorsOption(string description)
    {
        var option = new Option<string[]>(Flags.Compressors)
        {
            Description = $"{description} Known: {CompressorRegistry.Help}.",
            AllowMultipleArgumentsPerToken = true,
            HelpName = "SPEC",
        };
        option.Validators.Add(result =>
        {
            foreach (var spec in result.GetValueOrDefault<string[]>() ?? [])
            {
                try
                {
                    CompressorRegistry.Validate(spec);
                }
                catch (InputException e)
                {
                    result.AddError($"{Flags.Compressors}: {e.Message}");
                }
            }
        });
        return option;
    }

    internal static class Flags
    {
        public const string Compressors = "--compressors";
    }

    private static int Run(Communicator world, TrainOptions baseOptions, NonIidSettings nonIid, string directory, string[] compressors)
    {
        nonIid.Validate(world.Size);
        if (world.Size < 2)
        {
            throw new InputException("compare needs at least 2 ranks (RI-SGD with q = 2 holds 2 chunks out of p >= 2)");
        }

        if (world.Rank == 0)
        {
            // compare.md stands for every file compare writes there: a folder it cannot write fails before the first run.
            AtomicFile.CheckWritable(Path.Combine(directory, "compare.md"), "--out");
        }

        var results = new List<(string Label, RunResult Result)>();
        foreach (var (label, algorithm, tau, redundancy) in Runs)
        {
            RankConsole.Line($"== {label} ==");
            var options = baseOptions with
            {
                Algorithm = algorithm,
                Tau = tau,
                Redundancy = redundancy,
                OutputPath = world.Rank == 0 ? Path.Combine(directory, $"compare-{algorithm}-tau{tau}-q{redundancy}.json") : null,
            };
            var result = AlgorithmRegistry.Train(world, options, new ConsoleTrainingReporter());
            results.Add((label, result!));
        }

        foreach (var spec in compressors)
        {
            var label = $"PSGD, {CompressorRegistry.Flag} {spec}";
            RankConsole.Line($"== {label} ==");
            var options = baseOptions with
            {
                Algorithm = Psgd.Registration.Name,
                Compress = spec,
                OutputPath = world.Rank == 0 ? Path.Combine(directory, $"compare-psgd-compress-{FileSafe(spec)}.json") : null,
            };
            var result = AlgorithmRegistry.Train(world, options, new ConsoleTrainingReporter());
            results.Add((label, result!));
        }

        var nonIidResults = NonIidComparison.Run(world, baseOptions, nonIid, directory);
        if (world.Rank == 0)
        {
            Write(directory, baseOptions, world.Size, results, compressors, nonIid, nonIidResults);
            RankConsole.Line($"wrote {Path.Combine(directory, "compare.md")}, compare-loss-vs-rounds.svg, compare-loss-vs-time.svg");
        }

        // A diverged run is in the table as such, and makes the comparison's exit status that of a diverged run.
        return results.Any(r => r.Result.IsDiverged) || nonIidResults.Any(r => r.Result.IsDiverged) ? Divergence.ExitCode : 0;
    }

    /// <summary>A --compress value as a file name part: ':' and ',' become '-'.</summary>
    internal static string FileSafe(string spec) => spec.Replace(':', '-').Replace(',', '-');

    /// <summary>The gradient bits per coordinate a run handed to MPI, from its results ("" where it averaged models).</summary>
    internal static string BitsPerCoordinate(RunResult r) =>
        r.Options.TryGetValue("bitsPerCoordinate", out var bits) && double.TryParse(bits, NumberStyles.Float, CultureInfo.InvariantCulture, out var b) && r.Algorithm == Psgd.Registration.Name
            ? b.ToString("F3", CultureInfo.InvariantCulture)
            : "";

    /// <summary>The first three fields of /proc/loadavg ("unknown" where there is none).</summary>
    private static string LoadAverage()
    {
        try
        {
            return string.Join(", ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private static void Write(string directory, TrainOptions o, int ranks, List<(string Label, RunResult Result)> results,
        string[] compressors, NonIidSettings nonIid, IReadOnlyList<NonIidComparison.Outcome> nonIidResults)
    {
        var table = new MarkdownTable("run", "final test accuracy %", "communication rounds", "bytes sent per rank", "gradient bits per coordinate", "wall s", "compute s", "communication s");
        foreach (var (label, r) in results)
        {
            table.AddRow(label,
                r.Divergence is { } diverged
                    ? $"diverged at step {diverged.Step} ({diverged.Quantity} {diverged.Value.ToString(CultureInfo.InvariantCulture)})"
                    : (100 * r.FinalTestAccuracy ?? double.NaN).ToString("F2", CultureInfo.InvariantCulture),
                r.Totals.CommunicationRounds.ToString(CultureInfo.InvariantCulture),
                ConsoleTrainingReporter.Bytes(r.Totals.BytesSentPerRank),
                BitsPerCoordinate(r),
                r.WallSeconds.ToString("F1", CultureInfo.InvariantCulture),
                r.Totals.ComputeSeconds.ToString("F1", CultureInfo.InvariantCulture),
                r.Totals.CommunicationSeconds.ToString("F1", CultureInfo.InvariantCulture));
        }

        var command = string.Create(CultureInfo.InvariantCulture,
            $"mpiexec -n {ranks} mpipipe compare {TrainFlags.Model} {o.Model} {TrainFlags.Epochs} {o.Epochs} {TrainFlags.Batch} {o.Batch} {TrainFlags.LearningRate} {o.LearningRate} " +
            $"{TrainFlags.Optimizer} {o.Optimizer.ToString().ToLowerInvariant()} {TrainFlags.Momentum} {o.Momentum} {TrainFlags.Seed} {o.Seed}" +
            $"{(o.TrainSamples is int n ? $" {TrainFlags.TrainSamples} {n}" : "")}{(o.MaxSteps is long m ? $" {TrainFlags.MaxSteps} {m}" : "")}"
            + $"{(compressors.Length > 0 ? $" {Flags.Compressors} {string.Join(' ', compressors)}" : "")}" +
            $" --non-iid-steps {nonIid.Steps} --non-iid-tau {nonIid.Tau} --non-iid-seeds {nonIid.Seeds}");
        var text = new StringBuilder()
            .AppendLine("# Data-parallel algorithms compared: PSGD, local SGD, RI-SGD" + (compressors.Length > 0 ? ", compressed PSGD" : ""))
            .AppendLine()
            .AppendLine($"Made by `{command}` on {DateTime.UtcNow:yyyy-MM-dd} ({Environment.ProcessorCount} cores).")
            .AppendLine($"Same model ({o.Model}), data (Fashion-MNIST), {ranks} ranks, {o.Epochs} epochs, global batch {o.Batch}, seed {o.Seed} for every run.")
            .AppendLine("Bytes are what a ring Allreduce sends per rank (2(n-1)/n of the payload per round); a compressed exchange's")
            .AppendLine("Allgatherv passes each rank's payload on n - 1 times. Gradient bits per coordinate: what PSGD handed to MPI")
            .AppendLine("per gradient value (32: dense fp32), scales and headers included; compressed runs encode and send per gradient")
            .AppendLine("bucket as backward finishes it (Iallgather of the sizes, Iallgatherv of the payloads).")
            .AppendLine($"Load average when written (1, 5, 15 min): {LoadAverage()}; the times were measured under that load, " +
                        "the accuracies, losses, rounds and bytes do not depend on it.")
            .AppendLine()
            .Append(table.ToString())
            .AppendLine()
            .AppendLine("![training loss vs communication rounds](compare-loss-vs-rounds.svg)")
            .AppendLine()
            .AppendLine("![training loss vs wall time](compare-loss-vs-time.svg)")
            .AppendLine()
            .AppendLine("The loss curve is rank 0's mini-batch loss averaged over windows of --curve-every steps.")
            .Append(nonIidResults.Count > 0 ? NonIidComparison.Markdown(nonIidResults, nonIid, ranks) : "");
        AtomicFile.WriteAllText(Path.Combine(directory, "compare.md"), text.ToString());

        var byRounds = new SvgPlot("Training loss vs communication rounds", "communication rounds (Allreduce calls)", "training loss") { LogY = true };
        var byTime = new SvgPlot("Training loss vs wall time", "wall time (s)", "training loss") { LogY = true };
        foreach (var (label, r) in results)
        {
            byRounds.Add(label, r.LossCurve.Select(p => ((double)p.CommunicationRounds, p.Loss)));
            byTime.Add(label, r.LossCurve.Select(p => (p.WallSeconds, p.Loss)));
        }

        byRounds.Write(Path.Combine(directory, "compare-loss-vs-rounds.svg"));
        byTime.Write(Path.Combine(directory, "compare-loss-vs-time.svg"));
    }
}
