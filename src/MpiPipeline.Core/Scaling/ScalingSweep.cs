using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MpiPipeline.Algorithms;
using MpiPipeline.Benchmarks;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;
using MpiPipeline.Training;

namespace MpiPipeline.Scaling;

/// <summary>Progress of a sweep; the CLI renders it (Core does not print).</summary>
internal interface IScalingReporter
{
    void Starting(string what, string commandLine);

    void Finished(string what, string summary);

    void Notice(string message);
}

/// <summary>What a sweep measured: the runs, and the benchmark timings for the model.</summary>
internal sealed record ScalingData(
    IReadOnlyList<ScalingRun> Runs, IReadOnlyList<TimingSample> Allreduce, IReadOnlyList<TimingSample> PingPong,
    IReadOnlyList<string> Notes);

/// <summary>
/// The sweep: for each repetition, mode and rank count one `mpipipe train` job (repetitions outermost, so slow spells
/// of a shared machine spread over the rank counts), then `mpipipe bench mpi` jobs for the model's Allreduce and
/// ping-pong timings. Every job's results JSON and log go to the work directory.
/// </summary>
internal static class ScalingSweep
{
    public static ScalingData Run(ScalingOptions options, JobLauncher launcher, IScalingReporter reporter)
    {
        options.Validate();
        var work = options.EffectiveWorkDirectory;
        Directory.CreateDirectory(work);
        var notes = new List<string>();
        // Before any job: where the namespace cannot be made or shaped, the script's reason is the one message.
        options.Network?.Check(launcher.NetworkScript);
        RecordNetwork(options);
        if (options.Network is not null && options.Mpi == MpiFlavor.Mpich)
        {
            const string note = "MPICH (ch4:ucx) over TCP now and then hangs in MPI_Finalize after a job's work is done (one rank spinning in UCX's endpoint close, the other waiting in the PMI barrier; about 1 training job in 10 on a 2-core machine), which the sweep meets as --timeout; Open MPI's own TCP transport (--mpi openmpi) has not shown it";
            notes.Add(note);
            reporter.Notice(note);
        }

        var oversubscribedRanks = options.Ranks.Where(n => ScalingMath.Oversubscribed(n, options.ThreadsPerRank, launcher.Cores)).ToList();
        if (oversubscribedRanks.Count > 0)
        {
            var note = $"oversubscribed: {string.Join(", ", oversubscribedRanks)} ranks x {options.ThreadsPerRank} thread(s) is more than the {launcher.Cores} cores available; those points measure time-sharing of cores, not parallel speed";
            notes.Add(note);
            reporter.Notice(note);
        }

        var runs = new List<ScalingRun>();
        for (var repetition = 1; repetition <= options.Repetitions; repetition++)
        {
            foreach (var mode in options.Modes)
            {
                foreach (var ranks in options.Ranks)
                {
                    runs.Add(Train(options, launcher, reporter, mode, ranks, repetition));
                }
            }
        }

        var allreduce = new List<TimingSample>();
        var pingPong = new List<TimingSample>();
        var payload = runs.Select(r => r.PayloadBytes).DefaultIfEmpty(0).Max();
        var benchRanks = BenchRanks(options, launcher.Cores, notes);
        if (options.Bench && benchRanks.Count > 0)
        {
            var maxBytes = options.BenchMaxBytes ?? BenchMaxBytes(payload);
            var pingPongAt = benchRanks.Min();
            foreach (var ranks in benchRanks)
            {
                var (a, p) = Bench(options, launcher, reporter, ranks, maxBytes, withPingPong: ranks == pingPongAt);
                allreduce.AddRange(a);
                pingPong.AddRange(p);
            }
        }
        else
        {
            notes.Add("no MPI benchmark ran (--no-bench or no rank count >= 2): the performance model is not fitted");
        }

        return new ScalingData(runs, allreduce, pingPong, notes);
    }

    /// <summary>The work folder's record of the network its jobs crossed (JSON: network, description, topology).</summary>
    public const string NetworkFile = "network.json";

    /// <summary>What <see cref="NetworkFile"/> holds.</summary>
    internal sealed record NetworkRecord(string Network, string Description, string Topology);

    /// <summary>
    /// Writes <see cref="NetworkFile"/> into the work folder; with --reuse, first refuses results that were measured on
    /// another network than this sweep asks for (reusing them would put one network's runs under another's name).
    /// </summary>
    private static void RecordNetwork(ScalingOptions options)
    {
        var record = new NetworkRecord(
            options.Network?.ToString() ?? ScalingCsv.NativeNetwork,
            options.Network?.Describe() ?? "the MPI's own transports (shared memory between the ranks of one machine)",
            options.Topology == LinkTopology.Shared ? "one link shared by all ranks" : "a link per rank");
        var path = Path.Combine(options.EffectiveWorkDirectory, NetworkFile);
        if (options.Reuse && File.Exists(path))
        {
            NetworkRecord? before;
            try
            {
                before = JsonSerializer.Deserialize<NetworkRecord>(File.ReadAllText(path), ResultsJson.Options);
            }
            catch (JsonException ex)
            {
                throw new InputException($"{path}: not a network record ({ex.Message}); delete it or use another --work");
            }

            if (before is not null && before.Network != record.Network)
            {
                throw new InputException($"--reuse: the runs in {options.EffectiveWorkDirectory} were measured on network '{before.Network}', this sweep asks for '{record.Network}': use another --work, or drop --reuse");
            }
        }

        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(record, ResultsJson.Options));
    }

    /// <summary>
    /// Where to benchmark: --bench-ranks, or every sweep rank count >= 2 that fits the cores (busy-polling MPI ranks
    /// sharing a core make each message wait for a time slice: such timings measure the scheduler, and take long).
    /// </summary>
    private static IReadOnlyList<int> BenchRanks(ScalingOptions options, int cores, List<string> notes)
    {
        if (options.BenchRanks is { } chosen || !options.Bench)
        {
            return options.BenchRanks ?? [];
        }

        var candidates = options.Ranks.Where(n => n >= 2).Order().ToList();
        var fitting = candidates.Where(n => !ScalingMath.Oversubscribed(n, 1, cores)).ToList();
        if (fitting.Count < candidates.Count)
        {
            var left = candidates.Except(fitting).ToList();
            if (fitting.Count == 0 && candidates.Count > 0)
            {
                fitting.Add(candidates[0]);
                left.Remove(candidates[0]);
            }

            if (left.Count > 0)
            {
                notes.Add($"the MPI benchmark ran at {string.Join(", ", fitting)} ranks, not at {string.Join(", ", left)}: more ranks than the {cores} cores (--bench-ranks to insist)");
            }
        }

        return fitting;
    }

    /// <summary>The largest benchmark message: the gradient (at least 64 KiB) rounded up onto the 8 B x 4^k grid, at most 64 MiB.</summary>
    public static long BenchMaxBytes(long payload)
    {
        long size = 8;
        while (size < Math.Max(payload, 64 << 10) && size * 4 <= 64 << 20)
        {
            size *= 4;
        }

        return size;
    }

    private static ScalingRun Train(ScalingOptions o, JobLauncher launcher, IScalingReporter reporter, ScalingMode mode, int ranks, int repetition)
    {
        var oversubscribed = ScalingMath.Oversubscribed(ranks, o.ThreadsPerRank, launcher.Cores);
        var batch = o.GlobalBatchAt(mode, ranks);
        var what = $"{ScalingCsv.ModeName(mode)} scaling, {ranks} rank(s), repetition {repetition}/{o.Repetitions}";
        var (json, elapsed) = RunOrReuse(o, launcher, reporter, what, ranks, $"{ScalingCsv.ModeName(mode)}-n{ranks}-r{repetition}", json =>
        {
            var args = new List<string>
            {
                TrainFlags.Verb, TrainFlags.Algorithm, o.Algorithm, TrainFlags.Model, o.Model, TrainFlags.Batch, I(batch),
                TrainFlags.MaxSteps, I(o.Steps), TrainFlags.Epochs, "1", TrainFlags.Threads, I(o.ThreadsPerRank),
                TrainFlags.CurveEvery, "1", TrainFlags.Output, json,
            };
            if (AlgorithmRegistry.OwnersOf(TrainFlags.Tau).Contains(o.Algorithm))
            {
                args.AddRange([TrainFlags.Tau, I(o.Tau)]);
            }

            // The performance model's step is compute + one Allreduce after it: its communication term is validated
            // against runs whose exchange is not overlapped with backward.
            if (AlgorithmRegistry.OwnersOf(TrainFlags.NoOverlap).Contains(o.Algorithm) && !o.TrainArguments.Contains(TrainFlags.NoOverlap))
            {
                args.Add(TrainFlags.NoOverlap);
            }

            if (!o.TrainArguments.Any(a => a.Split('=')[0] == TrainFlags.TestSamples))
            {
                args.AddRange([TrainFlags.TestSamples, "500"]);
            }

            args.AddRange(o.TrainArguments);
            return args;
        });
        var run = ScalingRun.FromResult(ResultsJson.Read(json), mode, repetition, o.WarmupSteps, oversubscribed, json);
        if (run.Ranks != ranks || run.GlobalBatch != batch)
        {
            throw new InputException($"{json}: a run of {run.Ranks} ranks with batch {run.GlobalBatch}, expected {ranks} and {batch} (stale file? run without --reuse)");
        }

        reporter.Finished(what, string.Create(CultureInfo.InvariantCulture,
            $"{run.Throughput:F0} samples/s, {1000 * run.StepSeconds:F1} ms/step (compute {1000 * run.ComputeSeconds:F1}, communication {1000 * run.CommunicationSeconds:F1}){(oversubscribed ? ", oversubscribed" : "")}{elapsed}"));
        return run;
    }

    private static (List<TimingSample> Allreduce, List<TimingSample> PingPong) Bench(
        ScalingOptions o, JobLauncher launcher, IScalingReporter reporter, int ranks, long maxBytes, bool withPingPong)
    {
        var what = $"MPI benchmark, {ranks} ranks, 8 B to {MessageSizes.Label(maxBytes)}";
        var (json, elapsed) = RunOrReuse(o, launcher, reporter, what, ranks, $"bench-n{ranks}", json =>
        [
            BenchMpiFlags.Verb, BenchMpiFlags.Subverb, BenchMpiFlags.Ops, withPingPong ? "pingpong,allreduce" : "allreduce",
            BenchMpiFlags.MinSize, "8", BenchMpiFlags.MaxSize, I(maxBytes), BenchMpiFlags.Step, "4",
            BenchMpiFlags.Samples, I(o.BenchSamples), BenchMpiFlags.Iterations, "0.25", BenchMpiFlags.Warmup, "0.2", BenchMpiFlags.Json, json,
        ]);

        var report = ReadBench(json);
        var allreduce = new List<TimingSample>();
        var pingPong = new List<TimingSample>();
        foreach (var entry in report.Results)
        {
            var sample = new TimingSample(report.WorldSize, entry.SizeBytes, entry.MedianMicroseconds * 1e-6);
            (entry.Op == "pingpong" ? pingPong : allreduce).Add(sample);
        }

        reporter.Finished(what, $"{allreduce.Count} Allreduce and {pingPong.Count} ping-pong timings{elapsed}");
        return (allreduce, pingPong);
    }

    /// <summary>Reads `bench mpi --json` output.</summary>
    public static MpiBenchmarkReport ReadBench(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<MpiBenchmarkReport>(File.ReadAllText(path))
                ?? throw new InputException($"{path}: empty benchmark report");
        }
        catch (Exception ex) when (ex is JsonException or IOException)
        {
            throw new InputException($"{path}: not a `bench mpi --json` report: {ex.Message}");
        }
    }

    /// <summary>
    /// The job <paramref name="name"/> (its results in name.json, given to <paramref name="arguments"/>; its output in
    /// name.log), unless --reuse finds name.json already there; returns that file and how long the job took.
    /// </summary>
    private static (string Json, string Elapsed) RunOrReuse(ScalingOptions o, JobLauncher launcher, IScalingReporter reporter,
        string what, int ranks, string name, Func<string, List<string>> arguments)
    {
        var json = Path.Combine(o.EffectiveWorkDirectory, name + ".json");
        if (o.Reuse && File.Exists(json))
        {
            return (json, " [reused]");
        }

        var args = arguments(json);
        File.Delete(json);
        return (json, Launch(o, launcher, reporter, what, ranks, args, Path.Combine(o.EffectiveWorkDirectory, name + ".log")));
    }

    private static string Launch(ScalingOptions o, JobLauncher launcher, IScalingReporter reporter, string what, int ranks, IEnumerable<string> args, string log)
    {
        var start = launcher.Command(ranks, args);
        reporter.Starting(what, JobLauncher.Format(start));
        var clock = Stopwatch.StartNew();
        var exit = JobLauncher.Run(start, log, o.RunTimeout);
        if (exit is null)
        {
            throw new InputException($"{what}: no result after {o.RunTimeout.TotalSeconds:F0} s, killed (see {log}); raise --timeout for bigger runs");
        }

        if (exit != 0 && !(exit == Divergence.ExitCode && File.Exists(Path.ChangeExtension(log, ".json"))))
        {
            var tail = File.ReadLines(log).Where(l => l.Length > 0).TakeLast(8);
            throw new InputException($"{what}: the job failed with exit code {exit}; the end of {log}:\n  {string.Join("\n  ", tail)}");
        }

        return string.Create(CultureInfo.InvariantCulture, $" [{clock.Elapsed.TotalSeconds:F1} s]");
    }

    private static string I(long value) => value.ToString(CultureInfo.InvariantCulture);
}
