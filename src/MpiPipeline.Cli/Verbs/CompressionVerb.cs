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
/// <c>mpipipe compression</c>: PSGD with each gradient compressor, over several seeds, on one model, data set, rank
/// count and number of epochs: test accuracy (mean and spread over the seeds), bytes handed to MPI per step, the
/// compression ratio over fp32, bits per coordinate and wall time; plots of test accuracy against steps and wall time.
/// Compressed rows encode each gradient bucket as soon as backward has finished it; the dense row averages with one
/// Allreduce after backward (<c>--no-overlap</c>). A gradient that fits one bucket (the cnn's) goes after backward in
/// both, so on such a model the rows differ in the compressor only.
/// </summary>
internal static class CompressionVerb
{
    internal static Command Create()
    {
        var table = TrainOptionTable.Common();
        var output = new Option<string>("--out") { Description = "Directory for compression.md and its plots.", DefaultValueFactory = _ => "bench/results" };
        var work = new Option<string>("--work") { Description = "Directory for each run's JSON.", DefaultValueFactory = _ => "build/bench/compression" };
        var compressors = CompareVerb.CompressorsOption("The rows: PSGD with each of these --compress values (none: dense fp32).");
        compressors.DefaultValueFactory = _ => ["none", "fp16", "topk:0.01", "qsgd:4", "ecq:4"];
        var seeds = new Option<long[]>("--seeds") { Description = "Seeds; every row runs once per seed.", AllowMultipleArgumentsPerToken = true, DefaultValueFactory = _ => [1, 2, 3] };
        var commandLine = new Option<string?>("--command-line") { Description = "How the report says it was made (default: this command)." };
        var command = new Command("compression", "PSGD with gradient compressors over seeds: accuracy, bytes per step, ratio, bits per coordinate, wall time; a table and plots.");
        table.AddTo(command);
        command.Options.Add(output);
        command.Options.Add(work);
        command.Options.Add(compressors);
        command.Options.Add(seeds);
        command.Options.Add(commandLine);
        command.SetAction(parse =>
        {
            var baseOptions = table.Read(parse);
            var (directory, workDirectory) = (parse.GetValue(output)!, parse.GetValue(work)!);
            var (specs, seedList) = (parse.GetValue(compressors)!, parse.GetValue(seeds)!);
            var madeBy = parse.GetValue(commandLine);
            return MpiRuntime.Run(world => Run(world, baseOptions, directory, workDirectory, specs, seedList, madeBy));
        });
        return command;
    }

    private static int Run(Communicator world, TrainOptions baseOptions, string directory, string workDirectory, string[] specs, long[] seeds, string? madeBy)
    {
        if (specs.Length == 0 || seeds.Length == 0)
        {
            throw new InputException("compression needs at least one --compressors value and one --seeds value");
        }

        if (world.Rank == 0)
        {
            AtomicFile.CheckWritable(Path.Combine(directory, "compression.md"), "--out");
            Directory.CreateDirectory(workDirectory);
        }

        var rows = specs.Select(spec => (Spec: spec, Runs: new List<RunResult>())).ToList();
        for (var s = 0; s < seeds.Length; s++)
        {
            var seed = seeds[s];
            foreach (var (spec, runs) in rows)
            {
                RankConsole.Line($"== PSGD {CompressorRegistry.Flag} {spec}, seed {seed} ==");
                var options = baseOptions with
                {
                    Algorithm = Psgd.Registration.Name,
                    Compress = spec,
                    NoOverlap = CompressorRegistry.IsNone(spec),
                    Seed = seed,
                    OutputPath = world.Rank == 0 ? Path.Combine(workDirectory, $"compression-{CompareVerb.FileSafe(spec)}-seed{seed}.json") : null,
                };
                runs.Add(AlgorithmRegistry.Train(world, options, new ConsoleTrainingReporter())!);
            }

            // After every seed: a long sweep cut short still leaves the report of the seeds it finished.
            if (world.Rank == 0)
            {
                Write(directory, baseOptions, world.Size, seeds[..(s + 1)], rows, madeBy);
                RankConsole.Line($"wrote {Path.Combine(directory, "compression.md")}, compression-accuracy-vs-steps.svg, compression-accuracy-vs-time.svg (seeds {string.Join(", ", seeds[..(s + 1)])})");
            }
        }

        return rows.Any(r => r.Runs.Any(run => run.IsDiverged)) ? Divergence.ExitCode : 0;
    }

    private static double Number(RunResult r, string key) =>
        r.Options.TryGetValue(key, out var text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? value : double.NaN;

    private static string F(double value, int digits) => double.IsFinite(value) ? value.ToString("F" + digits, CultureInfo.InvariantCulture) : "";

    private static void Write(string directory, TrainOptions o, int ranks, long[] seeds, List<(string Spec, List<RunResult> Runs)> rows, string? madeBy)
    {
        var table = new MarkdownTable("compressor", "test accuracy % (mean)", "min - max over seeds", "bytes to MPI per step per rank", "ratio over fp32",
            "bits per coordinate", "wall s (mean)", "communication s (mean)", "diverged");
        var dense = rows.FirstOrDefault(r => CompressorRegistry.IsNone(r.Spec)).Runs;
        foreach (var (spec, runs) in rows)
        {
            var completed = runs.Where(r => !r.IsDiverged && r.FinalTestAccuracy is not null).ToList();
            var accuracies = completed.Select(r => 100 * r.FinalTestAccuracy!.Value).ToList();
            var bytesPerStep = runs.Average(r => (double)r.Totals.AllreducePayloadBytesPerRank / Math.Max(1, r.Totals.CommunicationRounds));
            table.AddRow(
                runs[0].Options.GetValueOrDefault("compress", spec) is var full && full != spec ? $"{spec} ({full})" : spec,
                accuracies.Count > 0 ? F(accuracies.Average(), 2) : "",
                accuracies.Count > 0 ? $"{F(accuracies.Min(), 2)} - {F(accuracies.Max(), 2)}" : "",
                ConsoleTrainingReporter.Bytes(bytesPerStep),
                F(runs.Average(r => Number(r, "compressionRatio")), 1),
                F(runs.Average(r => Number(r, "bitsPerCoordinate")), 3),
                F(runs.Average(r => r.WallSeconds), 1),
                F(runs.Average(r => r.Totals.CommunicationSeconds), 1),
                runs.Count(r => r.IsDiverged) is var d && d > 0 ? $"{d} of {runs.Count} (at step {string.Join(", ", runs.Where(r => r.IsDiverged).Select(r => r.Divergence!.Step))})" : "0");
        }

        var command = madeBy ?? string.Create(CultureInfo.InvariantCulture,
            $"mpiexec -n {ranks} mpipipe compression {TrainFlags.Model} {o.Model} {TrainFlags.Epochs} {o.Epochs} {TrainFlags.Batch} {o.Batch} {TrainFlags.LearningRate} {o.LearningRate} " +
            $"{TrainFlags.Momentum} {o.Momentum} --seeds {string.Join(' ', seeds)} {CompareVerb.Flags.Compressors} {string.Join(' ', rows.Select(r => r.Spec))}");
        var text = new StringBuilder()
            .AppendLine("# Gradient compressors compared (PSGD)")
            .AppendLine()
            .AppendLine($"Made by `{command}` on {DateTime.UtcNow:yyyy-MM-dd} ({Environment.ProcessorCount} cores).")
            .AppendLine($"Model {o.Model}, data {o.DataSet}, {ranks} ranks, {o.Epochs} epochs, global batch {o.Batch}, lr {o.LearningRate.ToString(CultureInfo.InvariantCulture)}, momentum " +
                $"{o.Momentum.ToString(CultureInfo.InvariantCulture)}; seeds {string.Join(", ", seeds)} (every row once per seed). Compressed rows encode each gradient")
            .AppendLine("bucket when backward has finished it and send it with Iallgather (sizes) + Iallgatherv (payloads); every rank decodes all of them.")
            .AppendLine("The dense row averages with one Allreduce after backward (`--no-overlap`); a gradient that fits one bucket (DDP's 25 MB: the cnn's)")
            .AppendLine("is sent after backward by both.")
            .AppendLine("Bytes to MPI per step: what one rank handed to MPI per gradient exchange (payload and its size word), mean over seeds;")
            .AppendLine("ratio = fp32 bytes / those bytes; bits per coordinate = 32 / ratio.")
            .AppendLine()
            .Append(table.ToString())
            .AppendLine()
            .AppendLine("![test accuracy vs steps](compression-accuracy-vs-steps.svg)")
            .AppendLine()
            .AppendLine("![test accuracy vs wall time](compression-accuracy-vs-time.svg)")
            .AppendLine()
            .AppendLine("The plots: test accuracy after each epoch, mean over the seeds that did not diverge (x: steps, or mean wall time since the start).");
        if (dense is { Count: > 0 })
        {
            var denseAccuracy = dense.Where(r => r.FinalTestAccuracy is not null).Select(r => 100 * r.FinalTestAccuracy!.Value).DefaultIfEmpty(double.NaN).Average();
            text.AppendLine().AppendLine(string.Create(CultureInfo.InvariantCulture, $"Dense fp32 PSGD reference: {denseAccuracy:F2}% (mean over the seeds)."));
        }

        AtomicFile.WriteAllText(Path.Combine(directory, "compression.md"), text.ToString());

        var bySteps = new SvgPlot("Test accuracy vs steps", "steps", "test accuracy %");
        var byTime = new SvgPlot("Test accuracy vs wall time", "wall time (s)", "test accuracy %");
        foreach (var (spec, runs) in rows)
        {
            var completed = runs.Where(r => !r.IsDiverged && r.Epochs.Count > 0).ToList();
            if (completed.Count == 0)
            {
                continue;
            }

            var epochs = completed.Min(r => r.Epochs.Count);
            var stepsPerEpoch = completed[0].Totals.Steps / (double)completed[0].Epochs.Count;
            var points = Enumerable.Range(0, epochs).Select(e => (
                Steps: stepsPerEpoch * (e + 1),
                Seconds: completed.Average(r => r.Epochs.Take(e + 1).Sum(x => x.Seconds)),
                Accuracy: completed.Average(r => 100 * r.Epochs[e].TestAccuracy))).ToList();
            bySteps.Add(spec, points.Select(p => (p.Steps, p.Accuracy)));
            byTime.Add(spec, points.Select(p => (p.Seconds, p.Accuracy)));
        }

        bySteps.Write(Path.Combine(directory, "compression-accuracy-vs-steps.svg"));
        byTime.Write(Path.Combine(directory, "compression-accuracy-vs-time.svg"));
    }
}
