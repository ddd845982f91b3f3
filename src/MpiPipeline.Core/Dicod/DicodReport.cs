using System.Globalization;
using System.Text;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Dicod;

/// <summary>
/// bench/results/dicod.md and its plots from the JSON results of one problem solved by DICOD at several rank counts
/// and by the one-rank baselines: the table the issue asks for (objective, updates, wall time, speedups against DICOD
/// on one rank, greedy CD and LGCD), the goals' verdicts computed from those numbers, F - F* against time, and the
/// speedups against W.
/// </summary>
internal static class DicodReport
{
    /// <summary>Relative objective gap every DICOD run must reach against the sequential solution (the issue's goal).</summary>
    public const double ObjectiveGoal = 1e-6;

    public static string Label(DicodResult r) => r.Solver == "dicod" ? $"DICOD ({r.Local}) W = {r.Ranks}" : r.Solver switch
    {
        "greedy" => "greedy CD",
        "lgcd" => "LGCD",
        "fista" => "FISTA",
        var other => other,
    };

    /// <summary>
    /// Repetitions of one configuration (solver, local choice, ranks) reduced to the fastest: on a shared machine the
    /// other runs measure the other work as much as this one. Returns it with the repetitions' count and the slowest time.
    /// </summary>
    public static IReadOnlyList<(DicodResult Best, int Runs, double Slowest)> Fastest(IReadOnlyList<DicodResult> results) =>
        [.. results.GroupBy(r => (r.Solver, r.Local, r.Ranks))
            .Select(g => (g.MinBy(r => r.Seconds)!, g.Count(), g.Max(r => r.Seconds)))];

    /// <summary>The markdown; <paramref name="command"/> made the results, <paramref name="cores"/> is the machine's core count.</summary>
    public static string Markdown(IReadOnlyList<DicodResult> all, string command, int cores, string plotPrefix)
    {
        var repetitions = Fastest(all);
        var results = repetitions.Select(r => r.Best).ToList();
        var greedy = results.FirstOrDefault(r => r.Solver == "greedy");
        var lgcd = results.FirstOrDefault(r => r.Solver == "lgcd");
        var reference = greedy ?? lgcd ?? results[0];
        var dicod = results.Where(r => r.Solver == "dicod").OrderBy(r => r.Local).ThenBy(r => r.Ranks).ToList();
        var p = reference.Problem;
        var text = new StringBuilder();
        text.AppendLine("# DICOD: distributed convolutional sparse coding (Moreau, Oudre, Vayatis, ICML 2018)");
        text.AppendLine();
        text.AppendLine($"Made by `{command}` (bench/dicod/run.sh; `mpipipe dicod report` wrote this file and the plots from the runs' JSON).");
        text.AppendLine();
        text.AppendLine($"Problem: synthetic, seed {p.Seed}: K = {p.Atoms} atoms of P = {p.Channels} x L = {p.AtomLength}, T = {p.Length} " +
            $"(T - L + 1 = {p.Length - p.AtomLength + 1} activations per atom), Bernoulli-Gaussian activations rho = {G(p.Density)}, noise sigma = {G(p.Noise)}; " +
            $"lambda = {G(p.Lambda)} (lambda_max = {G(p.LambdaMax)}), tol = {G(p.Tol)} on |Delta Z|. " +
            $"Segments at W = 4: {(p.Length - p.AtomLength + 1) / 4} coordinates, 2L - 1 = {(2 * p.AtomLength) - 1}: T/W >> L.");
        text.AppendLine();
        text.AppendLine($"Machine: {cores} cores. Beside each run: the load average (1, 5, 15 min) at its end, and the largest share, over its " +
            "ranks, of the solving thread's time that it was runnable but waited for a core (Linux schedstat; a DICOD rank's phases without work, in which it yields or sleeps on purpose, left out): the load average " +
            "counts every runnable process, including work at a lower priority that yields its core whenever a run wants it; " +
            "the wait share says whether this run got its cores. W greater than the core count is oversubscribed: " +
            "ranks take turns on the cores (a passive rank sleeps between polls, 10 to 200 us), so wall time there measures the " +
            "total work more than the parallelism.");
        text.AppendLine();
        var table = new MarkdownTable("run", "ranks", "objective", "rel. gap to greedy CD", "updates", "wall s (fastest)", "runs, slowest s",
            "speedup vs DICOD W = 1", "vs greedy CD", "vs LGCD", "border msgs", "load", "waited for a core %");
        foreach (var (r, runs, slowest) in repetitions.OrderBy(x => x.Best.Solver == "dicod" ? 1 : 0).ThenBy(x => x.Best.Local).ThenBy(x => x.Best.Ranks))
        {
            var one = dicod.FirstOrDefault(d => d.Ranks == 1 && d.Local == r.Local);
            table.AddRow(
                Label(r) + (r.Ranks > cores ? " (oversubscribed)" : ""),
                r.Ranks.ToString(CultureInfo.InvariantCulture),
                r.Objective.ToString("G10", CultureInfo.InvariantCulture),
                Gap(r, reference).ToString("E1", CultureInfo.InvariantCulture),
                r.Updates.ToString(CultureInfo.InvariantCulture) + (r.Solver == "fista" ? " iterations" : ""),
                r.Seconds.ToString("F3", CultureInfo.InvariantCulture),
                $"{runs}, {slowest.ToString("F3", CultureInfo.InvariantCulture)}",
                r.Solver == "dicod" && one is not null ? Speedup(one, r) : "",
                greedy is null ? "" : Speedup(greedy, r),
                lgcd is null ? "" : Speedup(lgcd, r),
                r.Solver == "dicod" ? r.MessagesPerRank.Sum().ToString(CultureInfo.InvariantCulture) : "",
                r.LoadAverage,
                r.CoreWaitShare is { } share ? (100 * share).ToString("F1", CultureInfo.InvariantCulture) : "unknown");
        }

        text.AppendLine(table.ToString());
        text.AppendLine();
        text.AppendLine("Each configuration ran several times; the table and the plots take the fastest run of each (the load column is " +
            "that run's), the slowest is beside it. Speedup = the other configuration's fastest wall time / this one's. Wall time covers beta's initialisation and the solve " +
            "(DICOD: from a barrier to the last rank's stop, termination detection included; the curve and result gathering are not timed). " +
            "FISTA's objective is evaluated every iteration off the clock.");
        text.AppendLine();
        text.AppendLine("Where a super-linear speedup comes from (the paper's argument): greedy CD's choice scans all K (T - L + 1) " +
            "coordinates per update; each of DICOD's W workers scans its K (T - L + 1)/W and makes about 1/W of the updates, so " +
            "against greedy CD the speedup can reach W^2 with W cores, and even with fewer cores the work shrinks by W. LGCD's " +
            "choice already costs O(K L) per update, so against LGCD only the parallelism is left: at most W, on W free cores.");
        text.AppendLine();
        var load = results.Max(r => LoadOf(r));
        var loaded = Loaded(results, cores);
        if (loaded)
        {
            text.AppendLine($"**Measured under load: inconclusive.** The 1-minute load average reached {load:F0} on {cores} cores during these runs" +
                (results.All(r => r.CoreWaitShare is not null)
                    ? $" and a one-rank baseline waited for a core more than {100 * WaitShareLimit:F0}% of its running time. "
                    : ". ") +
                "With more runnable processes than cores, the scheduler shares the cores among processes, so a job of W ranks gets " +
                "about W shares where a one-rank job gets one: speedups at W > 1 are inflated by taking cores from the other work, and " +
                "repetitions differ by up to the slowest/fastest ratio in the table. The verdicts below are what these numbers say, " +
                "not evidence for or against the claim; `make bench-dicod` on a quiet machine settles them.");
            text.AppendLine();
        }
        else if (results.All(r => r.CoreWaitShare is not null))
        {
            text.AppendLine($"No one-rank run waited for a core more than {100 * WaitShareLimit:F0}% of its running time (largest: " +
                $"{100 * results.Where(r => r.Ranks == 1).Max(r => r.CoreWaitShare ?? 0):F1}%; 1-minute load average up to {load:F0} on {cores} cores): " +
                "the baselines' times are their own.");
            var waited = WaitedMultiRank(results, cores);
            if (waited.Count > 0)
            {
                text.AppendLine($"{string.Join(", ", waited.Select(r => $"{Label(r)} waited {100 * r.CoreWaitShare:F1}%"))}: {waited.Max(r => r.Ranks)} ranks " +
                    $"and the launcher's and runtime's threads on {cores} cores. Waiting only lengthened those runs, so their speedups are lower bounds.");
            }

            text.AppendLine();
        }

        text.AppendLine("## Goals");
        text.AppendLine();
        foreach (var line in Verdicts(dicod, greedy, lgcd, cores).Select(v => loaded && v.Contains("speedup", StringComparison.Ordinal) ? v + " (under load: inconclusive)" : v))
        {
            text.AppendLine("- " + line);
        }

        text.AppendLine();
        text.AppendLine("## Plots");
        text.AppendLine();
        text.AppendLine($"![F - F* against time]({Path.GetFileName(plotPrefix)}-convergence.svg)");
        text.AppendLine();
        text.AppendLine($"![speedups against W]({Path.GetFileName(plotPrefix)}-speedup.svg)");
        return text.ToString();
    }

    /// <summary>The goals of issue 17, each with its verdict from the numbers.</summary>
    public static IEnumerable<string> Verdicts(IReadOnlyList<DicodResult> dicod, DicodResult? greedy, DicodResult? lgcd, int cores)
    {
        var reference = greedy ?? lgcd;
        if (reference is null || dicod.Count == 0)
        {
            yield return "not assessed: the runs lack a sequential reference or DICOD";
            yield break;
        }

        var worst = dicod.Max(d => Gap(d, reference));
        yield return $"Objective within {ObjectiveGoal:G} relative of the sequential solution at every W: " +
            (worst <= ObjectiveGoal ? "**met**" : "**missed**") + $" (largest relative gap {worst:E1}).";
        foreach (var local in dicod.Select(d => d.Local).Distinct())
        {
            var two = dicod.FirstOrDefault(d => d.Ranks == 2 && d.Local == local);
            if (two is not null && greedy is not null)
            {
                var s = greedy.Seconds / two.Seconds;
                yield return $"DICOD ({local}) at W = 2 against sequential greedy CD: speedup {s:F2}, " +
                    (s > 2 ? "**super-linear (> W = 2): met**" : "**not super-linear: missed**") + ".";
            }

            if (two is not null && lgcd is not null)
            {
                var s = lgcd.Seconds / two.Seconds;
                yield return $"DICOD ({local}) at W = 2 against sequential LGCD: speedup {s:F2} " +
                    (s > 2 ? "(above W)" : s > 1 ? "(faster, below W)" : "(slower than LGCD on one core)") + ".";
            }

            var four = dicod.FirstOrDefault(d => d.Ranks == 4 && d.Local == local);
            if (four is not null && greedy is not null)
            {
                yield return $"DICOD ({local}) at W = 4 on {cores} cores against greedy CD: speedup {greedy.Seconds / four.Seconds:F2}" +
                    (four.Ranks > cores ? $"; oversubscribed, so at most {cores} ranks compute at once: the gain over W = 2 comes from segments of " +
                        "T/4 making each greedy choice cheaper, not from more cores." : ".");
            }
        }
    }

    /// <summary>F - F* (F* the smallest objective any run reached) against seconds, log scale.</summary>
    public static SvgPlot ConvergencePlot(IReadOnlyList<DicodResult> all)
    {
        var results = Fastest(all).Select(r => r.Best).ToList();
        var best = results.Min(r => r.Curve.Min(c => c.Objective));
        var floor = Math.Max(1e-12, Math.Abs(best) * 1e-12);
        var plot = new SvgPlot("DICOD, LGCD, greedy CD, FISTA: F(Z) - F* against time", "wall seconds", "F - F* (F* the best objective of any run)") { LogY = true };
        foreach (var r in results.OrderBy(r => r.Solver).ThenBy(r => r.Ranks))
        {
            plot.Add(Label(r), r.Curve.Where(c => c.Seconds > 0).Select(c => (c.Seconds, Math.Max(floor, c.Objective - best))));
        }

        return plot;
    }

    /// <summary>Speedup against W: DICOD against greedy CD, against LGCD, against itself on one rank; the line y = W.</summary>
    public static SvgPlot SpeedupPlot(IReadOnlyList<DicodResult> all)
    {
        var results = Fastest(all).Select(r => r.Best).ToList();
        var greedy = results.FirstOrDefault(r => r.Solver == "greedy");
        var lgcd = results.FirstOrDefault(r => r.Solver == "lgcd");
        var plot = new SvgPlot("DICOD speedup against W", "W (ranks)", "speedup (log scale)") { LogY = true };
        var dicod = results.Where(r => r.Solver == "dicod").ToList();
        foreach (var local in dicod.Select(d => d.Local).Distinct())
        {
            var runs = dicod.Where(d => d.Local == local).OrderBy(d => d.Ranks).ToList();
            var one = runs.FirstOrDefault(d => d.Ranks == 1);
            if (greedy is not null)
            {
                plot.Add($"{local}: vs greedy CD", runs.Select(d => ((double)d.Ranks, greedy.Seconds / d.Seconds)));
            }

            if (lgcd is not null)
            {
                plot.Add($"{local}: vs LGCD", runs.Select(d => ((double)d.Ranks, lgcd.Seconds / d.Seconds)));
            }

            if (one is not null)
            {
                plot.Add($"{local}: vs DICOD W = 1", runs.Select(d => ((double)d.Ranks, one.Seconds / d.Seconds)));
            }
        }

        var ranks = dicod.Select(d => (double)d.Ranks).Distinct().Order().ToList();
        plot.Add("linear (= W)", ranks.Select(w => (w, w)));
        return plot;
    }

    /// <summary>The share of its running time a run that fits the cores may have waited for a core and still count as its own timing.</summary>
    public const double WaitShareLimit = 0.05;

    /// <summary>
    /// Whether the speedups could be inflated by load: by the runs' own wait shares where every run has one, else by the
    /// load average (above the core count). Every speedup divides a one-rank run's time by another run's: waiting
    /// lengthens a one-rank baseline and inflates the speedups against it, so a baseline that waited more than
    /// <see cref="WaitShareLimit"/> makes the page inconclusive; a multi-rank run that waited only got slower, so its
    /// speedups are lower bounds (<see cref="WaitedMultiRank"/>) and stay conclusive when they meet a goal.
    /// </summary>
    public static bool Loaded(IReadOnlyList<DicodResult> results, int cores) =>
        results.All(r => r.CoreWaitShare is not null)
            ? results.Any(r => r.Ranks == 1 && r.CoreWaitShare > WaitShareLimit)
            : results.Max(r => LoadOf(r)) > cores;

    /// <summary>The runs of more than one rank that fit the cores and waited more than <see cref="WaitShareLimit"/>.</summary>
    public static IReadOnlyList<DicodResult> WaitedMultiRank(IReadOnlyList<DicodResult> results, int cores) =>
        [.. results.Where(r => r.Ranks > 1 && r.Ranks <= cores && r.CoreWaitShare > WaitShareLimit)];

    /// <summary>The 1-minute load average a run recorded (0 when unknown).</summary>
    private static double LoadOf(DicodResult r) =>
        double.TryParse(r.LoadAverage.Split(' ')[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? value : 0.0;

    private static double Gap(DicodResult r, DicodResult reference) => (r.Objective - reference.Objective) / Math.Abs(reference.Objective);

    private static string Speedup(DicodResult baseline, DicodResult r) => (baseline.Seconds / r.Seconds).ToString("F2", CultureInfo.InvariantCulture);

    private static string G(double value) => value.ToString("G6", CultureInfo.InvariantCulture);
}
