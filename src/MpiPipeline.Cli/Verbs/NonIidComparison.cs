using System.Globalization;
using System.Text;
using MpiPipeline.Algorithms;
using MpiPipeline.DataParallel;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;
using MpiPipeline.Training;

namespace MpiPipeline.Cli.Verbs;

/// <summary>What the non-i.i.d. part of <c>compare</c> runs: steps and tau shared by every run, seeds per q.</summary>
internal sealed record NonIidSettings(long Steps, int Tau, int Seeds, int TrainLossSamples)
{
    public static NonIidSettings Default { get; } = new(640, 16, 3, 10000);

    public static readonly int[] Redundancies = [1, 2, 3];

    public void Validate(int workers)
    {
        TrainFlags.RequireAtLeast("--non-iid-steps", Steps);
        TrainFlags.RequireAtLeast("--non-iid-tau", Tau);
        TrainFlags.RequireAtLeast("--non-iid-seeds", Seeds, 0);
        if (Seeds > 0 && workers < Redundancies.Max())
        {
            throw new InputException($"the non-i.i.d. comparison runs RI-SGD with q up to {Redundancies.Max()} and needs at least that many ranks " +
                $"(got {workers}); start more ranks or give --non-iid-seeds 0");
        }
    }

    /// <summary>Where the worker fails in the fault runs: half-way.</summary>
    public long FailStep => Steps / 2;

    /// <summary>The worker that fails: the last one (rank 0 reports the results).</summary>
    public static int FailRank(int workers) => workers - 1;
}

/// <summary>
/// The slides' claim on non-i.i.d. data, measured: RI-SGD(tau, q) on <c>--split chunks-by-class</c> (each chunk a few
/// classes) for q = 1 (local SGD on disjoint chunks), 2 and 3, at the same tau and the same number of steps (so the
/// same communication rounds), several seeds; the residual error is the average model's loss on the training set
/// (f = 1/p sum_j f_j, the same objective for every q since every chunk is held by q workers), next to test accuracy.
/// Then one fault run per q in {1, 2}: the last worker fails half-way, and the accuracy reached shows whether its
/// classes were lost with it.
/// </summary>
internal static class NonIidComparison
{
    internal sealed record Outcome(int Redundancy, long Seed, bool Fault, RunResult Result);

    public static List<Outcome> Run(Communicator world, TrainOptions baseOptions, NonIidSettings settings, string directory)
    {
        var outcomes = new List<Outcome>();
        if (settings.Seeds == 0)
        {
            return outcomes;
        }

        var runs = from q in NonIidSettings.Redundancies from s in Enumerable.Range(0, settings.Seeds) select (q, baseOptions.Seed + s, false);
        runs = runs.Concat([(1, baseOptions.Seed, true), (2, baseOptions.Seed, true)]);
        foreach (var (q, seed, fault) in runs)
        {
            var name = $"compare-noniid-q{q}-seed{seed}{(fault ? "-fault" : "")}";
            RankConsole.Line($"== non-i.i.d.: RI-SGD, q = {q}, tau = {settings.Tau}, seed {seed}{(fault ? $", worker {NonIidSettings.FailRank(world.Size)} fails at step {settings.FailStep}" : "")} ==");
            var options = baseOptions with
            {
                Algorithm = RiSgd.Registration.Name,
                Split = DataSplit.ChunksByClass,
                Tau = settings.Tau,
                Redundancy = q,
                Seed = seed,
                MaxSteps = settings.Steps,
                EvaluateEachEpoch = false,
                TrainLossEvery = (int)Math.Min(int.MaxValue, settings.Steps),
                TrainLossSamples = settings.TrainLossSamples,
                FailRank = fault ? NonIidSettings.FailRank(world.Size) : null,
                FailStep = fault ? settings.FailStep : null,
                OutputPath = world.Rank == 0 ? Path.Combine(directory, name + ".json") : null,
            };
            var result = AlgorithmRegistry.Train(world, options, new ConsoleTrainingReporter());
            if (result is null)
            {
                // This rank was the failed worker: it takes part in nothing more of this run, but in the next ones.
                continue;
            }

            outcomes.Add(new Outcome(q, seed, fault, result));
        }

        return outcomes;
    }

    public static string Markdown(IReadOnlyList<Outcome> outcomes, NonIidSettings settings, int ranks)
    {
        var placement = outcomes.Where(o => !o.Fault).GroupBy(o => o.Redundancy)
            .Select(g => g.First().Result.Notes.FirstOrDefault(n => n.StartsWith(ClassesNotePrefix, StringComparison.Ordinal)))
            .OfType<string>().Select(n => "- " + n[ClassesNotePrefix.Length..]);
        var text = new StringBuilder()
            .AppendLine()
            .AppendLine("## Non-i.i.d. data: local SGD (q = 1) vs RI-SGD (q = 2, 3)")
            .AppendLine()
            .AppendLine("`--split chunks-by-class` sorts the samples by label before cutting the p chunks:")
            .AppendLine(string.Join(Environment.NewLine, placement))
            .AppendLine()
            .AppendLine($"Every run: RI-SGD with tau = {settings.Tau}, {settings.Steps} steps, so {(settings.Steps + settings.Tau - 1) / settings.Tau} averaging rounds; " +
                        $"the same per-worker batch; seeds {string.Join(", ", outcomes.Where(o => !o.Fault).Select(o => o.Seed).Distinct())}. " +
                        $"Residual error: the average model's loss on the first {settings.TrainLossSamples} training samples after the last step " +
                        "(the objective f = 1/p sum_j f_j: every chunk is held by q workers, so it is the same f for every q); " +
                        "mean, sample standard deviation and range over the seeds.")
            .AppendLine();
        var table = new MarkdownTable("run", "training loss (mean)", "sd", "min .. max", "test accuracy % (mean)", "sd", "min .. max", "rounds");
        foreach (var group in outcomes.Where(o => !o.Fault).GroupBy(o => o.Redundancy))
        {
            var losses = group.Select(o => o.Result.TrainLossCurve is { Count: > 0 } c ? c[^1].Loss : double.NaN).ToArray();
            var accuracies = group.Select(o => 100 * (o.Result.FinalTestAccuracy ?? double.NaN)).ToArray();
            table.AddRow(group.Key == 1 ? "local SGD (q = 1)" : $"RI-SGD, q = {group.Key}",
                F(Mean(losses), "F4"), F(StandardDeviation(losses), "F4"), $"{F(losses.Min(), "F4")} .. {F(losses.Max(), "F4")}",
                F(Mean(accuracies), "F2"), F(StandardDeviation(accuracies), "F2"), $"{F(accuracies.Min(), "F2")} .. {F(accuracies.Max(), "F2")}",
                group.First().Result.Totals.CommunicationRounds.ToString(CultureInfo.InvariantCulture));
        }

        text.Append(table.ToString()).AppendLine();
        var faults = outcomes.Where(o => o.Fault).ToList();
        if (faults.Count > 0)
        {
            text.AppendLine($"Fault runs (seed {faults[0].Seed}): worker {NonIidSettings.FailRank(ranks)} of {ranks} fails at step {settings.FailStep} " +
                            "(the emulated fail-stop, see the README); the survivors finish the run and average among themselves.")
                .AppendLine();
            var faultTable = new MarkdownTable("run", "training loss", "test accuracy %", "same run without the failure: test accuracy %", "what the run noted");
            foreach (var fault in faults)
            {
                var twin = outcomes.FirstOrDefault(o => !o.Fault && o.Redundancy == fault.Redundancy && o.Seed == fault.Seed);
                var r = fault.Result;
                faultTable.AddRow(fault.Redundancy == 1 ? "local SGD (q = 1), one worker fails" : $"RI-SGD, q = {fault.Redundancy}, one worker fails",
                    F(r.TrainLossCurve is { Count: > 0 } c ? c[^1].Loss : double.NaN, "F4"),
                    F(100 * (r.FinalTestAccuracy ?? double.NaN), "F2"),
                    twin is null ? "" : F(100 * (twin.Result.FinalTestAccuracy ?? double.NaN), "F2"),
                    string.Join(" ", r.Notes.Where(n => n.StartsWith("chunks lost", StringComparison.Ordinal) || n.StartsWith("every chunk", StringComparison.Ordinal))));
            }

            text.Append(faultTable.ToString()).AppendLine();
        }

        return text.ToString();
    }

    private const string ClassesNotePrefix = "--split chunks-by-class: ";

    internal static double Mean(IReadOnlyList<double> values) => values.Count == 0 ? double.NaN : values.Average();

    /// <summary>Sample standard deviation (n - 1); NaN for fewer than two values.</summary>
    internal static double StandardDeviation(IReadOnlyList<double> values)
    {
        if (values.Count < 2)
        {
            return double.NaN;
        }

        var mean = values.Average();
        return Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
    }

    private static string F(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}
