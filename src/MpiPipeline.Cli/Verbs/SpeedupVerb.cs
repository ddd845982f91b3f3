using System.CommandLine;
using System.Globalization;
using System.Text;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Cli.Verbs;

/// <summary>
/// <c>mpipipe speedup</c>: PSGD's linear speedup in iterations (the lecture's O(1/(n eps^2))), from the results of
/// runs made with <c>--train-loss-every</c> at several worker counts n and seeds: for each run the first step at
/// which the model's training loss is at most the target, per n their mean and spread, the speedup S(1) / S(n) next
/// to the ideal n; a markdown table and an SVG plot. A plain process: it only reads the files.
/// </summary>
internal static class SpeedupVerb
{
    /// <summary>One run: its worker count, seed, per-worker batch, learning rate and steps to the target (null: not reached).</summary>
    internal sealed record Run(int Workers, long Seed, int PerWorkerBatch, double LearningRate, long? Steps, long StepsRun, RunResult Result);

    internal static Command Create()
    {
        var files = new Argument<string[]>("results") { Description = "Results JSON files of the runs (mpipipe train ... --train-loss-every N --output FILE).", Arity = ArgumentArity.OneOrMore };
        var target = new Option<double>("--target") { Description = "The training loss to reach.", Required = true };
        var output = new Option<string>("--out") { Description = "Directory for psgd-speedup.md and the plots.", DefaultValueFactory = _ => "bench/results" };
        var commandLine = new Option<string?>("--command-line") { Description = "The command that made the runs, quoted in the report." };
        var command = new Command("speedup", "PSGD's iterations to a training loss against the worker count n, next to the ideal 1/n: a table and a plot from runs' results.");
        command.Arguments.Add(files);
        command.Options.Add(target);
        command.Options.Add(output);
        command.Options.Add(commandLine);
        command.SetAction(parse => PlainVerb.Run("speedup", () =>
        {
            var runs = Read(parse.GetValue(files)!, parse.GetValue(target));
            Write(parse.GetValue(output)!, runs, parse.GetValue(target), parse.GetValue(commandLine));
            return 0;
        }));
        return command;
    }

    internal static List<Run> Read(IEnumerable<string> paths, double target)
    {
        if (!(target > 0))
        {
            throw new InputException($"--target must be a positive loss (got {target})");
        }

        var runs = new List<Run>();
        foreach (var path in paths)
        {
            var result = ResultsJson.Read(path);
            if (result.TrainLossCurve is not { Count: > 0 } curve)
            {
                throw new InputException($"{path}: the run has no training-loss curve; make it with --train-loss-every N");
            }

            var batch = int.Parse(result.Options["batch"], CultureInfo.InvariantCulture);
            runs.Add(new Run(result.Ranks, long.Parse(result.Options["seed"], CultureInfo.InvariantCulture), batch / result.Ranks,
                double.Parse(result.Options["lr"], CultureInfo.InvariantCulture), StepsToReach(curve, target), curve[^1].Step, result));
        }

        return runs;
    }

    /// <summary>The first evaluated step whose training loss is at most <paramref name="target"/>; null if none.</summary>
    internal static long? StepsToReach(IReadOnlyList<TrainLossPoint> curve, double target) =>
        curve.FirstOrDefault(p => p.Loss <= target)?.Step;

    internal static void Write(string directory, List<Run> runs, double target, string? commandLine)
    {
        var byWorkers = runs.GroupBy(r => r.Workers).OrderBy(g => g.Key).ToList();
        var baseline = byWorkers[0];
        var baselineMean = MeanSteps(baseline);
        var table = new MarkdownTable("workers n", "batch per worker", "lr", "loss evaluated every", "steps to loss <= target, per seed", "mean", "sd",
            "speedup S(1)/S(n)", "ideal n", "efficiency", "ideal steps S(1)/n");
        foreach (var group in byWorkers)
        {
            var mean = MeanSteps(group);
            var steps = group.Select(r => (double?)r.Steps).ToArray();
            var reached = steps.OfType<double>().ToArray();
            var speedup = baselineMean / mean;
            var ideal = (double)group.Key / baseline.Key;
            table.AddRow(group.Key.ToString(CultureInfo.InvariantCulture),
                string.Join(", ", group.Select(r => r.PerWorkerBatch).Distinct()),
                string.Join(", ", group.Select(r => r.LearningRate.ToString("G4", CultureInfo.InvariantCulture)).Distinct()),
                string.Join(", ", group.Select(r => Interval(r.Result.TrainLossCurve!)).Distinct()) + " steps",
                string.Join(", ", group.OrderBy(r => r.Seed).Select(r => r.Steps?.ToString(CultureInfo.InvariantCulture) ?? $"not in {r.StepsRun}")),
                F(mean, "F0"), F(NonIidComparison.StandardDeviation(reached), "F0"),
                F(speedup, "F2"), F(ideal, "F0"), F(speedup / ideal, "P0"), F(baselineMean / ideal, "F0"));
        }

        var first = runs[0].Result;
        var text = new StringBuilder()
            .AppendLine("# PSGD's linear speedup in iterations")
            .AppendLine()
            .AppendLine("The lecture's theorem: with n workers, each with its own mini-batch, PSGD is SGD with an n times larger batch and " +
                        "reaches E||grad f||^2 <= eps in O(1/(n eps^2)) iterations: iterations to a fixed accuracy fall as 1/n.")
            .AppendLine()
            .AppendLine(commandLine is null ? "" : $"Made by `{commandLine}` on {DateTime.UtcNow:yyyy-MM-dd} ({Environment.ProcessorCount} cores; " +
                        "ranks beyond the cores oversubscribed: iterations do not depend on it).")
            .AppendLine()
            .AppendLine($"Model {first.Model}, data {first.Options["dataset"]} (the training subset the command's --train-samples gives), " +
                        $"optimizer {first.Options["optimizer"]} with momentum {first.Options["momentum"]} (the lecture's vanilla update), per-worker batch fixed. " +
                        "Steps to the target: the first evaluation of the model's loss on the whole training subset (not mini-batch losses; " +
                        $"every few steps, as the table says: that interval is the resolution) at which it is <= {target.ToString(CultureInfo.InvariantCulture)}.")
            .AppendLine()
            .Append(table.ToString())
            .AppendLine()
            .AppendLine("![steps to the target loss vs workers](psgd-speedup.svg)")
            .AppendLine()
            .AppendLine("![training loss vs steps, first seed](psgd-speedup-loss.svg)");
        AtomicFile.WriteAllText(Path.Combine(directory, "psgd-speedup.md"), text.ToString());

        var plot = new SvgPlot($"PSGD: steps to training loss {target.ToString(CultureInfo.InvariantCulture)} vs workers", "workers n", "steps") { LogY = true };
        plot.Add("measured (mean over seeds)", byWorkers.Select(g => ((double)g.Key, MeanSteps(g))));
        plot.Add("ideal S(1) / n", byWorkers.Select(g => ((double)g.Key, baselineMean * baseline.Key / g.Key)));
        plot.Write(Path.Combine(directory, "psgd-speedup.svg"));

        var losses = new SvgPlot("PSGD: training loss vs steps (first seed)", "steps", "training loss") { LogY = true };
        foreach (var group in byWorkers)
        {
            var run = group.OrderBy(r => r.Seed).First();
            losses.Add($"n = {group.Key}", run.Result.TrainLossCurve!.Select(p => ((double)p.Step, p.Loss)));
        }

        losses.Add($"target {target.ToString(CultureInfo.InvariantCulture)}", [(0, target), (runs.Max(r => r.StepsRun), target)]);
        losses.Write(Path.Combine(directory, "psgd-speedup-loss.svg"));
    }

    /// <summary>Steps between two evaluations of the curve (its first two points; a one-point curve: its step).</summary>
    internal static long Interval(IReadOnlyList<TrainLossPoint> curve) => curve.Count > 1 ? curve[1].Step - curve[0].Step : curve[0].Step;

    /// <summary>Mean steps to the target over the group's runs; NaN if any run missed it (the mean would flatter).</summary>
    private static double MeanSteps(IEnumerable<Run> group)
    {
        var steps = group.Select(r => r.Steps).ToArray();
        return steps.Any(s => s is null) ? double.NaN : steps.Average(s => (double)s!.Value);
    }

    private static string F(double value, string format) => double.IsNaN(value) ? "n/a" : value.ToString(format, CultureInfo.InvariantCulture);
}
