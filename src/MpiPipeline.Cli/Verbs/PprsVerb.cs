using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using MpiPipeline.Mpi;
using MpiPipeline.Smoothing;
using MpiPipeline.Telemetry;
using MpiPipeline.Torch;

namespace MpiPipeline.Cli.Verbs;

/// <summary>
/// <c>mpipipe pprs</c>: GD, AGD and PPRS (Colin, Dos Santos, Scaman 2019) on a chain of Delta nodes pipelined over the
/// ranks of the job (rank r runs a contiguous block of nodes: several virtual stages per rank), on the supplement's
/// worst-case functions or on the adversarial-example problem of the poster's Figure 3. Rank 0 prints a table per
/// run at evenly spaced iterations (time units, f, wall time), a summary, and with --bounds the bounds table.
/// </summary>
internal static class PprsVerb
{
    /// <summary>libtorch threads per rank when neither --threads nor MPIPIPE_TORCH_THREADS says.</summary>
    private const int DefaultThreads = 1;

    internal static Command Create()
    {
        var table = Options();
        var threads = new Option<int>("--threads") { Description = "libtorch threads per rank (adversarial; the nodes' tensors are small).", DefaultValueFactory = _ => DefaultThreads };
        var output = new Option<string?>("--output") { Description = "Write the results (every iteration of every run) as JSON to FILE (rank 0)." };
        var csv = new Option<string?>("--csv") { Description = "Write the curves as CSV to FILE (rank 0)." };
        var plot = new Option<string?>("--plot") { Description = "Write f vs time units as SVG to FILE (rank 0)." };
        var summary = new Option<string?>("--summary") { Description = "Write the problem, the runs' parameters and the summary table as Markdown to FILE (rank 0)." };
        var bounds = new Option<bool>("--bounds") { Description = "Also print the bounds table: the supplement's bounds vs GD, AGD, PPRS on the worst cases, per Delta (1, 5, 20 and --delta) and t." };

        var sweep = new Option<string?>("--bounds-sweep")
        {
            Description = "Only write the bounds sweep to FILE (Markdown; rank 0): Eq. 10 and Eq. 14 vs measured PPRS and subgradient time to eps on Eq. 8, eps x Delta (1, 20, 200) x d, m = --terms.",
        };
        var command = new Command("pprs", "GD, AGD and PPRS pipelined over the ranks on a chain of Delta nodes: the worst-case functions or the adversarial problem.");
        table.AddTo(command);
        foreach (var option in new Option[] { threads, output, csv, plot, summary, bounds, sweep })
        {
            command.Options.Add(option);
        }

        command.SetAction(parse => MpiRuntime.Run(world =>
        {
            var options = table.Read(parse);
            options.Validate(world.Size);
            if (parse.GetValue(sweep) is { } sweepPath)
            {
                if (world.Rank == 0)
                {
                    AtomicFile.CheckWritable(sweepPath, "--bounds-sweep");
                    var rows = BoundsSweep.Build(terms: options.Terms, seed: options.Seed);
                    var made = "make bench-pprs-bounds" + (options.Terms > 1 ? $" BENCH_PPRS_BOUNDS_ARGS=\"--terms {options.Terms}\"" : "");
                    AtomicFile.WriteAllText(sweepPath, BoundsSweep.Document(rows, made));
                    RankConsole.Line($"wrote {sweepPath}");
                }

                return 0;
            }

            if (options.Problem == "adversarial")
            {
                var t = TorchRuntime.ChooseThreads(OptionTable.Given(parse, threads) ? parse.GetValue(threads) : null, DefaultThreads);
                if (t < 1)
                {
                    throw new InputException($"--threads {t} must be >= 1");
                }

                TorchRuntime.Threads = t;
            }

            return Run(world, options, new Outputs(parse.GetValue(output), parse.GetValue(csv), parse.GetValue(plot), parse.GetValue(summary)),
                parse.GetValue(bounds));
        }));
        return command;
    }

    /// <summary>The options of <see cref="PprsOptions"/>, with its defaults.</summary>
    internal static OptionTable<PprsOptions> Options()
    {
        var t = new OptionTable<PprsOptions>();
        t.Add("--problem", "smooth (Eq. 1) | nonconvex (Eq. 6) | nonsmooth (Eq. 8) | adversarial (Figure 3)", o => o.Problem, (o, v) => o with { Problem = v })
            .AcceptOnlyFromAmong([.. PprsOptions.Problems]);
        t.Add("--delta", "Delta, the depth of the chain (nodes spread evenly over the ranks).", o => o.Depth, (o, v) => o with { Depth = v });
        t.Add("--terms", "m, the terms of the finite sum f = (1/m) sum_i f_i: m micro-batches per point, 2 (K m + Delta - 1) time units per evaluation (worst cases: m identical terms; adversarial: the images in m groups).",
            o => o.Terms, (o, v) => o with { Terms = v });
        t.Add("--samples", "K, PPRS's perturbed copies per iteration; a comma-separated list runs PPRS once per K (default: Eq. 13, ceil((T+1)/sqrt d)).",
            o => o.Samples.Count > 0 ? string.Join(',', o.Samples) : null, (o, v) => o with { Samples = ParseSamples(v) });
        t.Add("--iterations", "T, iterations of every method.", o => o.Iterations, (o, v) => o with { Iterations = v });
        t.Add("--budget", "Instead of T: a budget of time units, each method running the iterations that fit (2 Delta per GD/AGD iteration, 2 (K + Delta - 1) per PPRS iteration).",
            o => o.Budget, (o, v) => o with { Budget = v });
        t.Add("--method", "gd | agd | pprs | all, or a comma-separated list.",
            o => o.Run.SequenceEqual(PprsOptions.Methods) ? "all" : string.Join(',', o.Run), (o, v) => o with { Run = ParseMethods(v) });
        t.Add("--gamma", $"PPRS's smoothing gamma (default: Eq. 13, R d^(-1/4)/(T+1); adversarial: {G(PprsProblem.AdversarialGamma)}).", o => o.Gamma, (o, v) => o with { Gamma = v });
        t.Add("--step", $"eta of GD and AGD (default: 1/beta for smooth, 1/152 for nonconvex, R/(L sqrt T) for nonsmooth, {G(PprsProblem.AdversarialStep)} for adversarial).",
            o => o.Step, (o, v) => o with { Step = v });
        t.Add("--pprs-step", "eta of PPRS (default: gamma/L for nonsmooth, Eq. 13; otherwise --step).", o => o.PprsStep, (o, v) => o with { PprsStep = v });
        t.Add("--lipschitz", "adversarial: L of f (default: estimated, the largest ||grad f|| at delta = 0 and 64 points gamma X_j).",
            o => o.Lipschitz, (o, v) => o with { Lipschitz = v });
        t.Add("--theory-step", "PPRS's eta = gamma/L (1/beta of the L/gamma-smooth f^gamma, as in the theory) instead of --step.",
            o => o.TheoryStep, (o, v) => o with { TheoryStep = v });
        t.Add("--precision", "nonconvex PPRS: eps of Eqs. 22-23, setting the default gamma (r = 1) and K = ceil(18 L^2/eps^2) (default L/2).",
            o => o.Precision, (o, v) => o with { Precision = v });
        t.Add("--stationarity-samples", "nonconvex PPRS: M, perturbations per iterate of the stationarity estimate (off the clock).",
            o => o.StationaritySamples, (o, v) => o with { StationaritySamples = v });
        t.Add("--seed", "Seed of the perturbations X_k, drawn by (seed, iteration, k); and of an untrained model.", o => o.Seed, (o, v) => o with { Seed = v });
        t.Add("--dimension", $"d for the worst-case functions (default {PprsOptions.DefaultDimension}); adversarial: the image size.", o => o.Dimension, (o, v) => o with { Dimension = v });
        t.Add("--model", "adversarial: the classifier (deep-mlp:N[:W], res-mlp:N[:W], ...), cut into Delta nodes.", o => o.Model, (o, v) => o with { Model = v });
        t.Add("--parameters", "adversarial: its trained flat parameters (mpipipe train --save-parameters); without: untrained.", o => o.ParametersPath, (o, v) => o with { ParametersPath = v });
        t.Add("--images", "adversarial: B, test images sharing the perturbation.", o => o.Images, (o, v) => o with { Images = v });
        t.Add("--kappa", "adversarial: the margin's clip kappa.", o => o.Kappa, (o, v) => o with { Kappa = v });
        t.Add("--lambda", "adversarial: the penalty weight lambda of (lambda/2)||delta||^2.", o => o.Penalty, (o, v) => o with { Penalty = v });
        t.Add("--dataset", "adversarial: the data set whose test images are perturbed (as train --dataset; the model's --parameters must come from it).",
            o => o.DataSet, (o, v) => o with { DataSet = v });
        t.Add("--data", "adversarial: directory of the Fashion-MNIST IDX files.", o => o.DataDirectory, (o, v) => o with { DataDirectory = v });
        t.Add("--checkpoints", "Rows per run in the console tables.", o => o.Checkpoints, (o, v) => o with { Checkpoints = v });
        t.Add("--batched", "One rank only: each node maps the K points in one call instead of K micro-batches (same clock, same numbers up to float rounding; fast).",
            o => o.Batched, (o, v) => o with { Batched = v });
        t.Choice("--schedule", "The pipelined oracle's micro-batch order: pipelined (GPipe, 2 (K m + Delta - 1) per evaluation) | one-at-a-time (no pipelining, 2 K m Delta).",
            [("pipelined", ChainSchedule.Pipelined), ("one-at-a-time", ChainSchedule.OneAtATime)], o => o.Schedule, (o, v) => o with { Schedule = v });
        t.Choice("--monitor", "How f is monitored (off the clock): closed (the closed form where there is one) | pipeline (a forward pass over the ranks).",
            [("closed", false), ("pipeline", true)], o => o.MonitorByForwardPass, (o, v) => o with { MonitorByForwardPass = v });
        return t;
    }

    private sealed record Outputs(string? Json, string? Csv, string? Plot, string? Summary);

    private static int Run(Communicator world, PprsOptions o, Outputs outputs, bool bounds)
    {
        if (world.Rank == 0)
        {
            // Rank 0 writes them all: an unwritable one fails before the experiment, not after it.
            foreach (var (flag, path) in new[] { ("--json", outputs.Json), ("--csv", outputs.Csv), ("--plot", outputs.Plot), ("--summary", outputs.Summary) })
            {
                if (path is not null)
                {
                    AtomicFile.CheckWritable(path, flag);
                }
            }
        }

        using var problem = PprsProblem.Create(o);
        var ranges = MpiChainOracle.EvenRanges(problem.Chain.Depth, world.Size);
        RankConsole.Line($"pprs: {problem.Description}");
        RankConsole.Line(o.Batched
            ? $"chain: Delta = {o.Depth} nodes, d = {problem.Dimension}, one process, K points per node call (--batched)"
            : $"chain: Delta = {o.Depth} nodes, d = {problem.Dimension}, pipelined over {world.Size} rank(s), nodes per rank: {string.Join(" ", ranges)}");
        RankConsole.Line(o.Terms == 1
            ? "clock: one node forward or backward = 1 time unit; an evaluation of K points = 2 (K + Delta - 1) (Eq. 14)"
            : $"clock: one node forward or backward = 1 time unit; an evaluation of K points on m = {o.Terms} terms = 2 (K m + Delta - 1)");
        RankConsole.Line();

        var result = PprsExperiment.Run(world, o, problem, run => Report(run, o.Checkpoints, problem.MinimumValue));
        RankConsole.Line(Summary(result));
        RankConsole.Line("Relative to this comparison (f_0 to the best f of any run):");
        RankConsole.Line(result.SummaryTable());
        if (bounds)
        {
            RankConsole.Line("Bounds (supplement) vs measured, one process, on the worst cases built for each t:");
            if (RankConsole.IsRoot)
            {
                var depths = BoundsTable.DefaultDepths.Append(o.Depth).Distinct().Order();
                RankConsole.Line(BoundsTable.ToMarkdown(BoundsTable.Build(depths, seed: o.Seed)));
            }
        }

        if (world.Rank == 0)
        {
            if (outputs.Json is { } json)
            {
                AtomicFile.WriteAllText(json, JsonSerializer.Serialize(result, ResultsJson.Options) + "\n");
            }

            if (outputs.Csv is { } csv)
            {
                AtomicFile.WriteAllText(csv, result.ToCsv());
            }

            if (outputs.Plot is { } plot)
            {
                AtomicFile.WriteAllText(plot, result.ToPlot().ToSvg());
            }

            if (outputs.Summary is { } summary)
            {
                AtomicFile.WriteAllText(summary, Markdown(result));
            }
        }

        return 0;
    }

    private static void Report(PprsMethodRun run, int checkpoints, double? minimum)
    {
        RankConsole.Line($"== {run.Label}: T = {run.Iterations}, eta = {G(run.StepSize)}" +
            (run.Method == "pprs" ? $", gamma = {G(run.Gamma)}" : "") +
            $", {run.TimeUnitsPerIteration} time units per iteration ==");
        var headers = minimum is null
            ? new[] { "iteration", "time units", "f", "wall s" }
            : ["iteration", "time units", "f", "f - f*", "wall s"];
        var table = new MarkdownTable(headers);
        var last = run.Curve.Count - 1;
        var rows = Enumerable.Range(0, checkpoints + 1).Select(c => (int)Math.Round((double)c * last / checkpoints)).Distinct();
        foreach (var i in rows)
        {
            var p = run.Curve[i];
            var cells = new List<string> { p.Iteration.ToString(CultureInfo.InvariantCulture), p.TimeUnits.ToString(CultureInfo.InvariantCulture), G(p.Value) };
            if (minimum is { } m)
            {
                cells.Add(G(p.Value - m));
            }

            cells.Add(p.WallSeconds.ToString("F2", CultureInfo.InvariantCulture));
            table.AddRow([.. cells]);
        }

        RankConsole.Line(table.ToString());
        if (run.Stationarity is { } st)
        {
            RankConsole.Line(StationarityText(st));
        }
    }

    /// <summary>Non-convex PPRS's stationarity against its bounds (Eqs. 19, 22).</summary>
    private static string StationarityText(NonConvexStationarity st) =>
        $"stationarity (M = {st.MonitorSamples} perturbations per iterate, off the clock; L = {G(st.Lipschitz)}, D = {G(st.Gap)}, eps = {G(st.Precision)}):\n" +
        $"  min_t ||grad f^gamma(theta_t)||^2 = {G(st.MinSmoothedGradientSquared)}  (Eq. 19 bound: {G(st.Eq19Bound)})\n" +
        $"  min_t ||v_t|| = {G(st.MinGoldsteinNorm)}, v_t in the Goldstein subdifferential of radius r = a sqrt(d) gamma = {G(st.GoldsteinRadius)}, a = {G(st.RadiusFactor)}  (Eq. 22 bound: {G(st.Eq22Bound)})\n" +
        $"  Eq. 23's T and K for ||v|| <= eps: T = {st.Eq23Iterations}, K = {st.Eq23Samples}\n";

    private static string Markdown(PprsResult result)
    {
        var parameters = string.Join("; ", result.Runs.Select(r =>
            $"{r.Label}: eta = {G(r.StepSize)}" + (r.Method == "pprs" ? $", gamma = {G(r.Gamma)}" : "") + $", {r.TimeUnitsPerIteration} units/iteration"));
        var stationarity = string.Concat(result.Runs.Where(r => r.Stationarity is not null).Select(r => $"\n{r.Label}: {StationarityText(r.Stationarity!)}"));
        return $"{result.Description}.\n\nDelta = {result.Depth}, d = {result.Dimension}; {parameters}.\n\n{result.SummaryTable()}{stationarity}";
    }

    private static string Summary(PprsResult result)
    {
        var table = new MarkdownTable("run", "T", "time units", "final f", "best f", "wall s", "compute s (rank 0)", "MPI s (rank 0)");
        foreach (var run in result.Runs)
        {
            table.AddRow(run.Label, run.Iterations.ToString(CultureInfo.InvariantCulture),
                run.Curve[^1].TimeUnits.ToString(CultureInfo.InvariantCulture), G(run.FinalValue), G(run.BestValue),
                run.WallSeconds.ToString("F2", CultureInfo.InvariantCulture), Seconds(run.ComputeSeconds), Seconds(run.CommunicationSeconds));
        }

        return "Summary" + (result.MinimumValue is { } m ? $" (f* = {G(m)})" : "") + ":\n" + table;
    }

    private static IReadOnlyList<int> ParseSamples(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return [];
        }

        var values = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var k))
            {
                throw new InputException($"--samples '{text}': give K as an integer or a comma-separated list of integers, e.g. 1,4,16");
            }

            if (k < 1)
            {
                throw new InputException($"--samples {k}: PPRS needs K >= 1 perturbed copies per iteration");
            }

            values.Add(k);
        }

        return values;
    }

    private static IReadOnlyList<string> ParseMethods(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(p => p.ToLowerInvariant()).ToList();
        if (parts.Contains("all"))
        {
            return PprsOptions.Methods;
        }

        foreach (var part in parts)
        {
            if (!PprsOptions.Methods.Contains(part))
            {
                throw new InputException($"--method '{part}': one of gd, agd, pprs, all (or a comma-separated list)");
            }
        }

        return parts;
    }

    private static string Seconds(double value) => double.IsNaN(value) ? "-" : value.ToString("F2", CultureInfo.InvariantCulture);

    private static string G(double value) => value.ToString("G6", CultureInfo.InvariantCulture);
}
