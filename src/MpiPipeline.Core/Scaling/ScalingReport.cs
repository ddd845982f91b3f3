using System.Globalization;
using System.Text;
using MpiPipeline.Algorithms;
using MpiPipeline.Benchmarks;
using MpiPipeline.Telemetry;
using MpiPipeline.Training;

namespace MpiPipeline.Scaling;

/// <summary>Where the sweep ran, for the report's header.</summary>
internal sealed record ScalingMachine(string Launcher, int Cores, string Processor, string LoadBefore, DateTime Date)
{
    /// <summary>This machine: the CPU model from /proc/cpuinfo and the load average, where Linux has them.</summary>
    public static ScalingMachine Current(string launcher, int cores)
    {
        static string Read(string path, Func<string, string> pick)
        {
            try
            {
                return File.Exists(path) ? pick(File.ReadAllText(path)) : "?";
            }
            catch (IOException)
            {
                return "?";
            }
        }

        var processor = Read("/proc/cpuinfo", text => text.Split('\n').FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?");
        var load = Read("/proc/loadavg", text => string.Join(' ', text.Split(' ').Take(3)));
        return new ScalingMachine(launcher, cores, processor, load, DateTime.UtcNow);
    }
}

/// <summary>
/// Writes the sweep's results into one folder: <c>scaling-runs.csv</c>, <c>scaling.csv</c>, <c>scaling.md</c> (tables,
/// the model's parameters, its validation and projections) and the plots <c>scaling-speedup.svg</c>,
/// <c>scaling-breakdown-MODE.svg</c> and <c>scaling-projection.svg</c>.
/// </summary>
internal static class ScalingReport
{
    public const string MarkdownFile = "scaling.md";

    /// <summary>Writes every file; returns the paths written.</summary>
    public static IReadOnlyList<string> Write(ScalingOptions o, ScalingMachine machine, ScalingData data, IReadOnlyList<ScalingPoint> points, PerformanceModel? model, string? modelMissing)
    {
        var dir = o.OutputDirectory;
        Directory.CreateDirectory(dir);
        var written = new List<string>();
        string Put(string name)
        {
            var path = Path.Combine(dir, name);
            written.Add(path);
            return path;
        }

        var network = o.Network?.Label ?? ScalingCsv.NativeNetwork;
        ScalingCsv.WriteRuns(Put("scaling-runs.csv"), data.Runs, network);
        ScalingCsv.WritePoints(Put("scaling.csv"), points, network);

        var speedup = new SvgPlot("Speedup vs ranks", "ranks", "speedup (throughput / throughput at the fewest ranks)");
        var lowest = points.Min(p => p.Ranks);
        var highest = points.Max(p => p.Ranks);
        foreach (var mode in points.Select(p => p.Mode).Distinct())
        {
            speedup.Add($"{ScalingCsv.ModeName(mode)} (measured)", points.Where(p => p.Mode == mode).Select(p => ((double)p.Ranks, p.Speedup)));
        }

        speedup.Add("ideal", points.Select(p => p.Ranks).Distinct().Order().Select(n => ((double)n, (double)n / lowest)));
        speedup.Write(Put("scaling-speedup.svg"));

        foreach (var mode in points.Select(p => p.Mode).Distinct())
        {
            var modePoints = points.Where(p => p.Mode == mode).ToList();
            var chart = new SvgBarChart($"Time per step, {ScalingCsv.ModeName(mode)} scaling (medians)", "ranks", "milliseconds per step",
                [.. modePoints.Select(p => p.Ranks.ToString(CultureInfo.InvariantCulture))]);
            chart.Add("compute", [.. modePoints.Select(p => 1000 * p.ComputeSecondsMedian)]);
            chart.Add("communication", [.. modePoints.Select(p => 1000 * p.CommunicationSecondsMedian)]);
            chart.Add("other", [.. modePoints.Select(p => 1000 * p.OtherSecondsMedian)]);
            chart.Write(Put($"scaling-breakdown-{ScalingCsv.ModeName(mode)}.svg"));
        }

        IReadOnlyList<Projection>? weak = null;
        if (model is not null)
        {
            weak = model.OnOwnLinks().Project(ScalingMode.Weak, o.ProjectRanks, o.PerRankBatch, o.Tau, o.PipelineStages, o.MicroBatches, o.ActivationBytesPerSample);
            var plot = new SvgPlot($"Projected parallel efficiency, weak scaling ({o.PerRankBatch} samples per rank)", "log2(ranks)", "efficiency");
            plot.Add("PSGD", weak.Select(p => (Math.Log2(p.Ranks), p.Psgd.Efficiency)));
            plot.Add($"local SGD, tau = {o.Tau}", weak.Select(p => (Math.Log2(p.Ranks), p.LocalSgd.Efficiency)));
            plot.Add($"pipeline, {o.PipelineStages} stages", weak.Select(p => (Math.Log2(p.Ranks), p.Pipeline.Efficiency)));
            if (o.AssumedNetwork is { } net)
            {
                var assumed = model.WithNetwork(net.Alpha, net.Bandwidth)
                    .Project(ScalingMode.Weak, o.ProjectRanks, o.PerRankBatch, o.Tau, o.PipelineStages, o.MicroBatches, o.ActivationBytesPerSample);
                plot.Add("PSGD, assumed network", assumed.Select(p => (Math.Log2(p.Ranks), p.Psgd.Efficiency)));
                plot.Add($"local SGD, assumed network", assumed.Select(p => (Math.Log2(p.Ranks), p.LocalSgd.Efficiency)));
                plot.Add("pipeline, assumed network", assumed.Select(p => (Math.Log2(p.Ranks), p.Pipeline.Efficiency)));
            }

            plot.Write(Put("scaling-projection.svg"));
        }

        AtomicFile.WriteAllText(Put(MarkdownFile), Markdown(o, machine, data, points, model, modelMissing, lowest, highest));
        return written;
    }

    public static string Markdown(ScalingOptions o, ScalingMachine machine, ScalingData data, IReadOnlyList<ScalingPoint> points, PerformanceModel? model, string? modelMissing, int lowest, int highest)
    {
        var md = new StringBuilder();
        md.AppendLine($"# Scaling study: {o.Algorithm}, model {o.Model}");
        md.AppendLine();
        md.AppendLine($"Made by `{o.CommandLine ?? "mpipipe scaling"}` on {machine.Date:yyyy-MM-dd} — {machine.Cores} cores ({machine.Processor}), load average before the runs: {machine.LoadBefore}.");
        md.AppendLine(o.Network is { } network
            ? $"Network: emulated, every job (training and benchmark) inside it: {network.Describe()}. MPI over TCP (Open MPI btl tcp, MPICH ch4:ucx tcp), made by bench/network/emulate.sh."
            : "Network: none emulated; the MPI's own transports (shared memory between the ranks of one machine).");
        md.AppendLine($"Jobs started with {machine.Launcher}; {o.Steps} steps per run of which the first {o.WarmupSteps} are warm-up (not timed); {o.Repetitions} repetition(s) per point, repetitions outermost; {o.ThreadsPerRank} libtorch thread(s) per rank" +
            (AlgorithmRegistry.OwnersOf(TrainFlags.NoOverlap).Contains(o.Algorithm) ? "; the gradient Allreduce not overlapped with backward (--no-overlap), as the model's step is compute + Allreduce." : "."));
        md.AppendLine("Throughput = global batch / steady step time (rank 0's wall clock over the timed steps); compute, communication and other are per step on the same basis (rank 0's own counters over the timed steps, so they add up to the step);");
        md.AppendLine($"speedup = throughput / throughput at {lowest} rank(s), ideal = ranks / {lowest}, efficiency = speedup / ideal; spread = (max - min) / median of the throughput over the repetitions.");
        if (o.Reuse)
        {
            md.AppendLine($"Jobs whose results were already in `{o.EffectiveWorkDirectory}` were not run again (--reuse): the date and load average above are this analysis', not necessarily the runs'.");
        }

        foreach (var note in data.Notes)
        {
            md.AppendLine();
            md.AppendLine($"**Note:** {note}.");
        }

        foreach (var mode in points.Select(p => p.Mode).Distinct())
        {
            md.AppendLine();
            md.AppendLine(mode == ScalingMode.Strong
                ? $"## Strong scaling (global batch {o.GlobalBatch} at every rank count)"
                : $"## Weak scaling ({o.PerRankBatch} samples per rank)");
            md.AppendLine();
            var table = new MarkdownTable("ranks", "batch/rank", "samples/s (median)", "min", "max", "spread", "step ms", "compute ms", "comm ms", "other ms", "comm share", "speedup", "ideal", "efficiency", "oversubscribed");
            foreach (var p in points.Where(p => p.Mode == mode))
            {
                table.AddRow(I(p.Ranks), I(p.PerRankBatch), F(p.ThroughputMedian, 0), F(p.ThroughputMin, 0), F(p.ThroughputMax, 0),
                    F(p.SpreadPercent, 1) + "%", F(1000 * p.StepSecondsMedian, 2), F(1000 * p.ComputeSecondsMedian, 2),
                    F(1000 * p.CommunicationSecondsMedian, 2), F(1000 * p.OtherSecondsMedian, 2), F(100 * p.CommunicationShare, 1) + "%",
                    F(p.Speedup, 2) + "x", F(p.IdealSpeedup, 2) + "x", F(100 * p.Efficiency, 1) + "%", p.Oversubscribed ? "yes" : "no");
            }

            md.Append(table);
            md.AppendLine();
            md.AppendLine($"![time per step, {ScalingCsv.ModeName(mode)} scaling](scaling-breakdown-{ScalingCsv.ModeName(mode)}.svg)");
        }

        md.AppendLine();
        md.AppendLine("![speedup vs ranks](scaling-speedup.svg)");
        md.AppendLine();
        md.AppendLine("Raw data: `scaling-runs.csv` (one line per run), `scaling.csv` (the tables above).");
        md.AppendLine();
        md.AppendLine("## Performance model");
        md.AppendLine();
        if (model is null)
        {
            md.AppendLine($"Not fitted: {modelMissing}.");
            return md.ToString();
        }

        AppendModel(md, o, data, points, model, highest);
        return md.ToString();
    }

    private static void AppendModel(StringBuilder md, ScalingOptions o, ScalingData data, IReadOnlyList<ScalingPoint> points, PerformanceModel model, int highest)
    {
        var benchRanks = string.Join(", ", data.Allreduce.Select(s => s.Ranks).Distinct().Order());
        md.AppendLine("Step time = compute c(b) + other o(b) + communication, b = samples per rank per step:");
        md.AppendLine(model.Topology == LinkTopology.Shared
            ? "- PSGD: one ring Allreduce of the gradient (S bytes) per step on one link all n ranks share: 2(n-1) alpha + 2(n-1) S beta (each of the 2(n-1) steps puts n messages of S/n bytes on the one link; the per-rank form 2(n-1)/n S beta would fit beta at the benchmarked rank count and be off by n_bench / n at every other). Projections give each rank a link of its own: 2(n-1)/n S beta, bandwidth lower bound 2(n-1)/n S / B (B = point-to-point bandwidth)."
            : "- PSGD: one ring Allreduce of the gradient (S bytes) per step, 2(n-1) alpha + 2(n-1)/n S beta; its bandwidth lower bound is 2(n-1)/n S / B (B = point-to-point bandwidth).");
        md.AppendLine($"- local SGD: the same Allreduce (of the model) every tau = {o.Tau} steps.");
        md.AppendLine($"- pipeline: p = {o.PipelineStages} stages x d = n/p replicas, M = {o.MicroBatches} micro-batches of m = b p / M samples; (M + p - 1) slots of one micro-batch's forward + backward on a stage (c1 m / p) and an activation and a gradient message of {o.ActivationBytesPerSample} B per sample (2 (alpha + A m beta), point-to-point fit), plus c0 (not divided among the stages), o(b) and the Allreduce of the stage's S/p gradient among its d replicas. The bubble is (p - 1) / (M + p - 1). Not measured here (no pipeline runs in this sweep): a projection from the point-to-point fit and the per-sample compute only.");
        md.AppendLine("- efficiency: T1 / (n T(n)) for strong scaling, T1 / T(n) for weak, T1 = c + o of the same work on one rank.");
        md.AppendLine();
        md.AppendLine("Fits: weighted least squares minimizing relative errors (weights 1/t^2), coefficients kept >= 0.");
        md.AppendLine();
        md.AppendLine("### Fitted parameters");
        md.AppendLine();
        var fit = new MarkdownTable("parameter", "value", "fitted to");
        fit.AddRow("Allreduce alpha (per ring step)", Us(model.Allreduce.Alpha),
            $"{data.Allreduce.Count} `bench mpi` Allreduce medians at n = {benchRanks}, ring model{(model.Topology == LinkTopology.Shared ? " on one shared link" : "")}");
        fit.AddRow("Allreduce beta (as bandwidth)", Gbps(model.Allreduce.Bandwidth), "same");
        fit.AddRow("point-to-point alpha", Us(model.PointToPoint.Alpha), data.PingPong.Count > 0 ? $"{data.PingPong.Count} ping-pong medians (one way), n = 2" : "no ping-pong timings: the Allreduce fit stands in");
        fit.AddRow("point-to-point bandwidth B", Gbps(model.PointToPoint.Bandwidth), "same");
        fit.AddRow("compute c0 (per step)", Ms(model.Compute.Fixed), $"{data.Runs.Count} runs: compute per step vs samples per rank");
        fit.AddRow("compute c1 (per sample)", Us(model.Compute.PerSample), "same");
        fit.AddRow("other o0 (per step)", Ms(model.Other.Fixed), "same runs: step - compute - communication");
        fit.AddRow("other o1 (per sample)", Us(model.Other.PerSample), "same");
        fit.AddRow("gradient S", $"{model.GradientBytes.ToString("N0", CultureInfo.InvariantCulture)} B", "the runs' Allreduce payload per round");
        md.Append(fit);
        md.AppendLine();

        md.AppendLine("### The fits against their timings");
        md.AppendLine();
        var checks = model.CheckFits(data.Allreduce, data.PingPong);
        var fitTable = new MarkdownTable("op", "ranks", "size", "measured µs", "model µs", "error");
        foreach (var c in checks)
        {
            fitTable.AddRow(c.Op, I(c.Ranks), MessageSizes.Label(c.Bytes), F(c.Measured * 1e6, 2), F(c.Predicted * 1e6, 2), Pct(c.Error));
        }

        md.Append(fitTable);
        md.AppendLine();
        foreach (var op in checks.Select(c => c.Op).Distinct())
        {
            var errors = checks.Where(c => c.Op == op).Select(c => Math.Abs(c.Error)).ToList();
            md.AppendLine($"- {op}: median |error| {Pct(ScalingMath.Median(errors))}, max {Pct(errors.Max())}.");
        }

        md.AppendLine();
        md.AppendLine("### Validation against the measured points");
        md.AppendLine();
        var validation = model.Validate(points);
        var vTable = new MarkdownTable("mode", "ranks", "batch/rank", "measured step ms", "model step ms", "step error", "measured comm ms", "model comm ms", "comm error", "oversubscribed");
        foreach (var v in validation)
        {
            vTable.AddRow(ScalingCsv.ModeName(v.Mode), I(v.Ranks), F(v.PerRankBatch, 0), F(1000 * v.MeasuredStep, 2), F(1000 * v.PredictedStep, 2), Pct(v.StepError),
                F(1000 * v.MeasuredCommunication, 2), F(1000 * v.PredictedCommunication, 2), double.IsNaN(v.CommunicationError) ? "-" : Pct(v.CommunicationError), v.Oversubscribed ? "yes" : "no");
        }

        md.Append(vTable);
        md.AppendLine();
        var stepErrors = validation.Select(v => Math.Abs(v.StepError)).ToList();
        var fair = validation.Where(v => !v.Oversubscribed).Select(v => Math.Abs(v.StepError)).ToList();
        md.AppendLine($"Step time: median |error| {Pct(ScalingMath.Median(stepErrors))}, max {Pct(stepErrors.Max())} over all {validation.Count} points" +
            (fair.Count > 0 && fair.Count < validation.Count ? $"; {Pct(ScalingMath.Median(fair))} median, {Pct(fair.Max())} max over the {fair.Count} points that are not oversubscribed." : "."));
        var commErrors = validation.Where(v => !double.IsNaN(v.CommunicationError)).Select(v => Math.Abs(v.CommunicationError)).ToList();
        if (commErrors.Count > 0)
        {
            var fairComm = validation.Where(v => !v.Oversubscribed && !double.IsNaN(v.CommunicationError)).Select(v => Math.Abs(v.CommunicationError)).ToList();
            md.AppendLine($"Communication: median |error| {Pct(ScalingMath.Median(commErrors))}, max {Pct(commErrors.Max())}" +
                (fairComm.Count > 0 && fairComm.Count < commErrors.Count ? $"; {Pct(ScalingMath.Median(fairComm))} median, {Pct(fairComm.Max())} max over the {fairComm.Count} points that are not oversubscribed" : "") +
                ". Measured: rank 0's time inside the exchange over the timed steps, which includes waiting for the slowest rank (load imbalance, a busy core), which the alpha-beta model does not have; where the points are oversubscribed, time-sharing of the cores dominates it.");
        }

        var judged = fair.Count > 0 ? fair : stepErrors;
        var validated = judged.Max() <= 0.25;
        var verdict = validated
            ? $"within 25% of the measured step time at every point{(fair.Count > 0 && fair.Count < validation.Count ? " that is not oversubscribed (it has no term for ranks sharing a core, so those points are off by more)" : "")}"
            : "off by more than 25% at some point that is not oversubscribed: trust the projections less";
        md.AppendLine();
        md.AppendLine($"Verdict: the model is {verdict}. Its communication term is the alpha-beta transfer time alone; the waiting measured inside the Allreduce is not in it. The projections below extrapolate from {highest} to {o.ProjectRanks.Max()} ranks and carry at least the error above, plus whatever a network at scale does differently from the one measured here.");

        md.AppendLine();
        md.AppendLine(validated ? "### Projections with the fitted parameters" : "### Projections with the fitted parameters (UNVALIDATED)");
        if (!validated)
        {
            md.AppendLine();
            md.AppendLine($"**Unvalidated:** the model missed its 25% bound on the measured points above (step error up to {Pct(judged.Max())}), so these numbers are what the formula says, not a prediction to rely on.");
        }

        if (model.Topology == LinkTopology.Shared)
        {
            md.AppendLine();
            md.AppendLine("The runs shared one emulated link; these projections give every rank a link of its own with the fitted latency and bandwidth (a cluster whose every node has this link, behind a non-blocking switch).");
        }

        AppendProjections(md, o, model.OnOwnLinks());
        if (o.AssumedNetwork is { } net)
        {
            md.AppendLine();
            md.AppendLine($"### Projections with an assumed network (alpha = {Us(net.Alpha)}, B = {Gbps(net.Bandwidth)}; an assumption, not a measurement)");
            md.AppendLine();
            md.AppendLine(o.Network is null
                ? "The measured parameters above come from shared memory on one machine; a cluster's Allreduce crosses a network. Same compute fit, the network replaced by this one for Allreduce steps and messages alike."
                : "Same compute fit, the emulated link replaced by this network (a link per rank) for Allreduce steps and messages alike.");
            AppendProjections(md, o, model.WithNetwork(net.Alpha, net.Bandwidth));
        }

        md.AppendLine();
        md.AppendLine("![projected efficiency](scaling-projection.svg)");
    }

    private static void AppendProjections(StringBuilder md, ScalingOptions o, PerformanceModel model)
    {
        foreach (var (mode, batch, title) in new[]
                 {
                     (ScalingMode.Weak, o.PerRankBatch, $"weak scaling, {o.PerRankBatch} samples per rank"),
                     (ScalingMode.Strong, o.GlobalBatch, $"strong scaling, global batch {o.GlobalBatch}"),
                 })
        {
            md.AppendLine();
            md.AppendLine($"**{char.ToUpperInvariant(title[0])}{title[1..]}** (times in ms per step):");
            md.AppendLine();
            var table = new MarkdownTable("ranks", "batch/rank", "compute + other ms", "Allreduce ms", "bandwidth bound ms", "PSGD step ms", "PSGD eff.",
                $"local SGD (tau {o.Tau}) ms", "local SGD eff.", $"pipeline ({o.PipelineStages} stages) ms", "pipeline eff.", "bubble");
            var projections = model.Project(mode, o.ProjectRanks, batch, o.Tau, o.PipelineStages, o.MicroBatches, o.ActivationBytesPerSample);
            var skipped = projections.Where(p => p.PerRankBatch < 1).Select(p => p.Ranks).ToList();
            foreach (var p in projections.Where(p => p.PerRankBatch >= 1))
            {
                table.AddRow(I(p.Ranks), F(p.PerRankBatch, p.PerRankBatch < 10 ? 2 : 0), F(1000 * (p.ComputeSeconds + p.OtherSeconds), 3),
                    F(1000 * p.Psgd.CommunicationSeconds, 3), F(1000 * p.BandwidthBound, 3), F(1000 * p.Psgd.StepSeconds, 3), Pct(p.Psgd.Efficiency),
                    F(1000 * p.LocalSgd.StepSeconds, 3), Pct(p.LocalSgd.Efficiency), F(1000 * p.Pipeline.StepSeconds, 3), Pct(p.Pipeline.Efficiency),
                    $"{Pct(p.PipelineBubble)} (M = {p.PipelineMicroBatches})");
            }

            if (table.RowCount > 0)
            {
                md.Append(table);
            }

            if (skipped.Count > 0)
            {
                md.AppendLine();
                md.AppendLine($"Not shown: {string.Join(", ", skipped)} ranks, where the global batch of {batch} leaves less than one sample per rank.");
            }
        }
    }

    private static string I(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string F(double value, int digits) => double.IsFinite(value) ? value.ToString("F" + digits, CultureInfo.InvariantCulture) : "-";

    private static string Pct(double fraction) => double.IsFinite(fraction) ? (100 * fraction).ToString("F1", CultureInfo.InvariantCulture) + "%" : "-";

    private static string Us(double seconds) => F(seconds * 1e6, 2) + " µs";

    private static string Ms(double seconds) => F(seconds * 1e3, 3) + " ms";

    private static string Gbps(double bytesPerSecond) => double.IsFinite(bytesPerSecond) ? F(bytesPerSecond / 1e9, 2) + " GB/s" : "unbounded";
}
