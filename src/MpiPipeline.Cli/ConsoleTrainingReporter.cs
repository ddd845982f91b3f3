using System.Globalization;
using MpiPipeline.Data;
using MpiPipeline.Telemetry;
using MpiPipeline.Training;
using Spectre.Console;

namespace MpiPipeline.Cli;

/// <summary>
/// Renders a training run on rank 0: a Spectre.Console progress bar when the output is a terminal, plain progress
/// lines when it is not (a log file, a Slurm job), one line per epoch, and the per-epoch table at the end.
/// </summary>
internal sealed class ConsoleTrainingReporter : ITrainingReporter
{
    private readonly bool interactive = AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected;
    private readonly object gate = new();
    private TaskCompletionSource? finished;
    private Task? rendering;
    private ProgressTask? bar;
    private int totalEpochs;
    private int lastQuarter = -1;

    public void Started(TrainingPlan plan)
    {
        var o = plan.Options;
        totalEpochs = (int)((plan.TotalSteps + plan.StepsPerEpoch - 1) / plan.StepsPerEpoch);
        var algorithm = plan.Algorithm;
        var ranks = plan.Pipeline is { } grid
            ? $"{grid.Stages * grid.Replicas} ranks (S = {grid.Stages} stages x D = {grid.Replicas} replicas)"
            : $"{plan.Workers} worker(s)";
        Console.Out.WriteLine($"train: {algorithm}, model {o.Model} ({plan.Parameters:N0} parameters), {ranks} x {plan.ThreadsPerRank} thread(s), device {o.Device}");
        var dataSet = o.DataSet == DataSetRegistry.Default ? "" : $"{o.DataSet}, ";
        Console.Out.WriteLine($"data: {dataSet}{plan.TrainSamples} training / {plan.TestSamples} test samples, split {plan.Split}; {BatchText(plan)}, {plan.StepsPerEpoch} steps per epoch, {plan.TotalSteps} steps");
        if (plan.DataNote is { } note)
        {
            Console.Out.WriteLine($"  {note}");
        }

        if (plan.Pipeline is { } p)
        {
            Console.Out.WriteLine($"pipeline: {p.Schedule}, M = {p.MicroBatches} micro-batches of {p.MicroBatchSize} per mini-batch; partition by {p.Partition}: balance {string.Join(',', p.Balance)}");
            for (var s = 0; s < p.Stages; s++)
            {
                Console.Out.WriteLine($"  stage {s}: {p.StageLayers[s]} ({p.ParametersPerStage[s]:N0} parameters)");
            }
        }

        Console.Out.WriteLine($"optimizer: {o.Optimizer.ToString().ToLowerInvariant()}, lr {o.LearningRate}{(o.Optimizer == OptimizerKind.Sgd ? $", momentum {o.Momentum}{(o.Nesterov ? " (Nesterov)" : "")}" : "")}{(o.WeightDecay > 0 ? $", weight decay {o.WeightDecay}" : "")}; seed {o.Seed}");
        Console.Out.Flush();
        if (interactive)
        {
            finished = new TaskCompletionSource();
            var ready = new ManualResetEventSlim();
            rendering = Task.Run(() => AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .StartAsync(async context =>
                {
                    lock (gate)
                    {
                        bar = context.AddTask("epoch 1", maxValue: plan.StepsPerEpoch);
                    }

                    ready.Set();
                    await finished.Task;
                }));
            ready.Wait(TimeSpan.FromSeconds(5));
        }
    }

    /// <summary>The header's batch split: a synchronous step's global batch is cut over the workers, while an
    /// asynchronous worker computes each gradient (one update) on the whole batch.</summary>
    internal static string BatchText(TrainingPlan plan) => plan.WholeBatchPerWorker
        ? $"batch {plan.Options.Batch} per gradient (each worker takes the whole batch; one update per gradient)"
        : $"global batch {plan.Options.Batch} ({plan.Options.Batch / plan.Workers} per worker)";

    public void StepCompleted(int epoch, long stepInEpoch, long stepsPerEpoch, float loss)
    {
        if (interactive)
        {
            lock (gate)
            {
                if (bar is not null)
                {
                    bar.Description = float.IsNaN(loss) ? $"epoch {epoch + 1}/{totalEpochs}" : $"epoch {epoch + 1}/{totalEpochs}  loss {loss:F4}";
                    bar.MaxValue = stepsPerEpoch;
                    bar.Value = stepInEpoch;
                }
            }

            return;
        }

        var quarter = (int)(4 * stepInEpoch / stepsPerEpoch);
        if (quarter != lastQuarter && quarter is > 0 and < 4)
        {
            Console.Out.WriteLine($"  epoch {epoch + 1}/{totalEpochs}: {25 * quarter}% ({stepInEpoch}/{stepsPerEpoch} steps){(float.IsNaN(loss) ? "" : $", loss {loss:F4}")}");
            Console.Out.Flush();
        }

        lastQuarter = quarter;
    }

    public void EpochCompleted(EpochRecord r)
    {
        lastQuarter = -1;
        var line = string.Create(CultureInfo.InvariantCulture,
            $"epoch {r.Epoch}: train loss {r.TrainLoss:F4}, train acc {100 * r.TrainAccuracy:F2}%, test loss {r.TestLoss:F4}, test acc {100 * r.TestAccuracy:F2}%, {r.SamplesPerSecond:F0} samples/s, {r.Seconds:F1} s");
        if (interactive)
        {
            AnsiConsole.MarkupLine(Markup.Escape(line));
        }
        else
        {
            Console.Out.WriteLine(line);
            Console.Out.Flush();
        }
    }

    public void Notice(string message)
    {
        if (interactive)
        {
            AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(message)}[/]");
        }
        else
        {
            Console.Out.WriteLine($"note: {message}");
            Console.Out.Flush();
        }
    }

    public void Completed(RunResult run)
    {
        finished?.TrySetResult();
        rendering?.Wait(TimeSpan.FromSeconds(5));
        var table = new Table().Border(TableBorder.Simple)
            .AddColumns("epoch", "train loss", "train acc %", "test loss", "test acc %", "samples/s", "seconds", "rounds", "bytes sent/rank");
        foreach (var column in table.Columns)
        {
            column.RightAligned();
        }

        foreach (var r in run.Epochs)
        {
            table.AddRow(
                r.Epoch.ToString(CultureInfo.InvariantCulture),
                F(r.TrainLoss, "F4"), F(100 * r.TrainAccuracy, "F2"), F(r.TestLoss, "F4"), F(100 * r.TestAccuracy, "F2"),
                F(r.SamplesPerSecond, "F0"), F(r.Seconds, "F1"),
                r.CommunicationRounds.ToString(CultureInfo.InvariantCulture), Bytes(r.BytesSentPerRank));
        }

        if (run.Epochs.Count > 0)
        {
            AnsiConsole.Write(table);
        }

        if (run.Divergence is { } diverged)
        {
            foreach (var note in run.Notes)
            {
                Console.Out.WriteLine($"note: {note}");
            }

            // One message, on stderr, from rank 0 alone (every rank holds the same, agreed divergence).
            Console.Out.Flush();
            Console.Error.WriteLine(diverged.Message);
            Console.Error.Flush();
            return;
        }

        var t = run.Totals;
        var busy = t.StepSeconds;
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"final test accuracy {100 * run.FinalTestAccuracy ?? double.NaN:F2}% after {t.Steps} steps in {run.WallSeconds:F1} s; {t.CommunicationRounds} communication rounds, {Bytes(t.BytesSentPerRank)} sent per rank (ring estimate); training time per rank {t.StepSeconds:F1} s: compute {Share(t.ComputeSeconds, busy)}, communication {Share(t.CommunicationSeconds, busy)}, loop overhead {Share(t.LoopOverheadSeconds, busy)}; evaluation {t.EvaluationSeconds:F1} s"));
        if (run.Pipeline is { } p)
        {
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"pipeline: {1000 * p.SecondsPerMiniBatch:F1} ms per mini-batch, ideal {1000 * p.IdealSecondsPerMiniBatch:F1} ms (bubble (S-1)/(M+S-1) = {100 * p.BubbleFraction:F1}%; ideal/measured {p.EfficiencyVsIdeal:F2}); per stage t_f + t_b {string.Join(", ", p.ForwardSecondsPerMicroBatch.Zip(p.BackwardSecondsPerMicroBatch, (f, b) => $"{1000 * (f + b):F2}"))} ms, measured bubble {string.Join(", ", p.MeasuredBubblePerStage.Select(b => $"{100 * b:F0}%"))}, peak activations {string.Join(", ", p.PeakActivationsPerStage)}"));
        }

        foreach (var note in run.Notes)
        {
            Console.Out.WriteLine($"note: {note}");
        }

        Console.Out.Flush();
    }

    private static string F(double value, string format) =>
        double.IsNaN(value) ? "-" : value.ToString(format, CultureInfo.InvariantCulture);

    private static string Share(double part, double whole) =>
        string.Create(CultureInfo.InvariantCulture, $"{part:F1} s ({(whole > 0 ? 100 * part / whole : 0):F0}%)");

    internal static string Bytes(double bytes) => bytes switch
    {
        >= 1 << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1 << 30):F2} GiB"),
        >= 1 << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1 << 20):F1} MiB"),
        >= 1 << 10 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1 << 10):F1} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes:F0} B"),
    };
}
