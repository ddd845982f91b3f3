using System.Diagnostics;
using System.Globalization;
using System.Text;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Training;

/// <summary>When checkpoints are taken: every N steps, or at the end of every epoch.</summary>
internal readonly record struct CheckpointInterval(long Steps, bool EachEpoch)
{
    public const string Usage = "N (steps) or epoch";

    public static CheckpointInterval Parse(string text)
    {
        if (text == "epoch")
        {
            return new CheckpointInterval(0, true);
        }

        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var steps) && steps >= 1)
        {
            return new CheckpointInterval(steps, false);
        }

        throw new InputException($"{TrainFlags.CheckpointEvery} must be {Usage} with N >= 1 (got '{text}')");
    }

    /// <summary>True when a checkpoint follows step t (from 0).</summary>
    public bool IsDue(long t, long stepsPerEpoch) => EachEpoch ? (t + 1) % stepsPerEpoch == 0 : (t + 1) % Steps == 0;
}

/// <summary>
/// The checkpoint folder: <c>step-NNNNNNNNN.ckpt</c> files, each written atomically by rank 0 (<see cref="AtomicFile"/>:
/// a unique temporary name, fsync, rename, folder fsync), the last K kept. <c>--resume</c> takes the newest, or a file
/// named directly; rank 0 reads it and broadcasts it, so every rank checks the same bytes and fails the same way.
/// </summary>
internal static class CheckpointStore
{
    /// <summary>The tests' hook: "step" makes rank 0 SIGKILL itself halfway through writing the checkpoint after that many steps.</summary>
    public const string KillInSaveVariable = "MPIPIPE_TEST_KILL_IN_CHECKPOINT";

    /// <summary>The tests' hook: "rank:step" makes that world rank SIGKILL itself as it starts step (from 0) step.</summary>
    public const string KillAtVariable = "MPIPIPE_TEST_KILL_AT";

    private const string Prefix = "step-";

    /// <summary>The options (as the results name them) a resumed run must give unchanged: they decide the trajectory.
    /// The model is checked by its layers (<see cref="CheckModel"/>), which names both.</summary>
    private static readonly (string Key, string Flag)[] MustMatch =
    [
        ("algorithm", TrainFlags.Algorithm), ("dataset", TrainFlags.DataSet),
        ("trainSamples", TrainFlags.TrainSamples), ("batch", TrainFlags.Batch), ("optimizer", TrainFlags.Optimizer),
        ("lr", TrainFlags.LearningRate), ("momentum", TrainFlags.Momentum), ("nesterov", TrainFlags.Nesterov),
        ("weightDecay", TrainFlags.WeightDecay), ("seed", TrainFlags.Seed), ("split", TrainFlags.Split), ("tau", TrainFlags.Tau),
        ("redundancy", TrainFlags.Redundancy), ("compress", TrainFlags.Compress), ("onNonFinite", TrainFlags.OnNonFinite),
    ];

    public static string FileName(long step) => $"{Prefix}{step.ToString("D9", CultureInfo.InvariantCulture)}{Checkpoint.Extension}";

    /// <summary>The options a checkpoint records, with the ones <see cref="MustMatch"/> names.</summary>
    public static Dictionary<string, string> RecordedOptions(TrainOptions options, Dictionary<string, string> described, int trainSamples)
    {
        var recorded = new Dictionary<string, string>(described)
        {
            ["algorithm"] = options.Algorithm,
            ["model"] = options.Model,
            ["trainSamples"] = trainSamples.ToString(CultureInfo.InvariantCulture),
            ["compress"] = options.Compress,
            ["onNonFinite"] = options.OnNonFinite.ToString().ToLowerInvariant(),
        };
        return recorded;
    }

    /// <summary>The checkpoints in <paramref name="directory"/>, oldest first (other files are ignored).</summary>
    public static IReadOnlyList<(long Step, string Path)> List(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return [];
        }

        return [.. Directory.EnumerateFiles(directory, Prefix + "*" + Checkpoint.Extension)
            .Select(path => (Name: Path.GetFileName(path), Path: path))
            .Where(f => f.Name.Length == Prefix.Length + 9 + Checkpoint.Extension.Length)
            .Select(f => (Ok: long.TryParse(f.Name.AsSpan(Prefix.Length, 9), NumberStyles.None, CultureInfo.InvariantCulture, out var step), Step: step, f.Path))
            .Where(f => f.Ok)
            .Select(f => (f.Step, f.Path))
            .OrderBy(f => f.Step)];
    }

    /// <summary>
    /// Rank 0: writes the checkpoint atomically, then removes all but the newest <paramref name="keep"/> and any
    /// temporary file a killed save left behind. The old checkpoints stay untouched until the new one is complete.
    /// </summary>
    public static string Save(string directory, Checkpoint checkpoint, int keep)
    {
        var bytes = checkpoint.Serialize();
        var path = Path.Combine(directory, FileName(checkpoint.Header.Step));
        var killAt = ParseKillInSave(Environment.GetEnvironmentVariable(KillInSaveVariable));
        AtomicFile.Write(path, stream =>
        {
            if (killAt == checkpoint.Header.Step)
            {
                // The fault the old checkpoint must survive: the writer dies with half the new one on disk.
                stream.Write(bytes.AsSpan(0, bytes.Length / 2));
                (stream as FileStream)?.Flush(flushToDisk: true);
                Process.GetCurrentProcess().Kill();
                Thread.Sleep(Timeout.Infinite);
            }

            stream.Write(bytes);
        });

        foreach (var (_, old) in List(directory).SkipLast(keep))
        {
            File.Delete(old);
        }

        foreach (var stale in Directory.EnumerateFiles(directory, "." + Prefix + "*.tmp"))
        {
            File.Delete(stale);
        }

        return path;
    }

    /// <summary>Collective: rank 0 finds and reads the checkpoint <paramref name="path"/> names and broadcasts it; every
    /// rank parses the same bytes, so a missing, truncated or corrupt file is the same error everywhere (rank 0 prints it).</summary>
    public static (Checkpoint Checkpoint, string Path) Load(Communicator world, string path)
    {
        byte[] bytes = [];
        var file = "";
        var error = "";
        if (world.Rank == 0)
        {
            try
            {
                file = Locate(path);
                bytes = File.ReadAllBytes(file);
                Checkpoint.Parse(bytes, file);
            }
            catch (InputException ex)
            {
                error = ex.Message;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                error = $"{TrainFlags.Resume} {path}: cannot read {file}: {ex.Message}";
            }
        }

        var text = Share(world, Encoding.UTF8.GetBytes(error + "\n" + file));
        var parts = Encoding.UTF8.GetString(text).Split('\n', 2);
        if (parts[0].Length > 0)
        {
            throw new InputException(parts[0]);
        }

        bytes = Share(world, bytes);
        return (Checkpoint.Parse(bytes, parts[1]), parts[1]);
    }

    /// <summary>
    /// The same on every rank: the checkpoint continues this run only when the options that decide the trajectory are
    /// unchanged and it lies within the run (its step at most the run's total).
    /// </summary>
    public static void CheckOptions(CheckpointHeader header, string path, Dictionary<string, string> recorded, long totalSteps)
    {
        foreach (var (key, flag) in MustMatch)
        {
            var then = header.Options.GetValueOrDefault(key, "");
            var now = recorded.GetValueOrDefault(key, "");
            if (then != now)
            {
                throw new InputException($"{TrainFlags.Resume}: {path} was made with {flag} {then}, this run gives {flag} {now}; " +
                    "a resumed run must keep the options that decide its trajectory");
            }
        }

        if (header.Step > totalSteps)
        {
            throw new InputException($"{TrainFlags.Resume}: {path} is at step {header.Step}, past this run's {totalSteps} steps; raise --epochs or --max-steps");
        }
    }

    /// <summary>The same on every rank: the model a checkpoint holds is this run's (same layers, same parameter counts).</summary>
    public static void CheckModel(CheckpointHeader header, string path, string model, IReadOnlyList<CheckpointLayer> layers)
    {
        if (!header.Layers.SequenceEqual(layers))
        {
            static string Text(IEnumerable<CheckpointLayer> ls) => string.Join("; ", ls.Select(l => $"{l.Spec} ({l.Parameters})"));
            throw new InputException($"{TrainFlags.Resume}: {path} holds another model: '{header.Model}' with layers [{Text(header.Layers)}], " +
                $"this run trains '{model}' with layers [{Text(layers)}]");
        }
    }

    /// <summary>A file is itself; a folder gives its newest checkpoint.</summary>
    private static string Locate(string path)
    {
        if (File.Exists(path))
        {
            return path;
        }

        if (!Directory.Exists(path))
        {
            throw new InputException($"{TrainFlags.Resume} {path}: no such file or folder");
        }

        return List(path) is [.., var newest] ? newest.Path
            : throw new InputException($"{TrainFlags.Resume} {path}: the folder holds no checkpoint ({Prefix}NNNNNNNNN{Checkpoint.Extension})");
    }

    /// <summary>Rank 0's bytes on every rank: the length, then the bytes in chunks MPI's int counts can carry.</summary>
    private static byte[] Share(Communicator world, byte[] bytes)
    {
        Span<long> length = [bytes.LongLength];
        world.Bcast(length, 0);
        var all = world.Rank == 0 ? bytes : new byte[length[0]];
        const int chunk = 1 << 30;
        for (long offset = 0; offset < all.LongLength; offset += chunk)
        {
            world.Bcast(all.AsSpan((int)offset, (int)Math.Min(chunk, all.LongLength - offset)), 0);
        }

        return all;
    }

    /// <summary>As a rank starts step t: the tests' kill hook (<see cref="KillAtVariable"/>).</summary>
    public static void KillIfDue(int rank, long t, (int Rank, long Step)? killAt)
    {
        if (killAt is (var r, var s) && r == rank && s == t)
        {
            Process.GetCurrentProcess().Kill();
            Thread.Sleep(Timeout.Infinite);
        }
    }

    internal static (int Rank, long Step)? ParseKillAt(string? text) => RankStepVariable.Parse(KillAtVariable, text, "1:5");

    private static long? ParseKillInSave(string? text) =>
        string.IsNullOrWhiteSpace(text) ? null
        : long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var step) ? step
        : throw new InputException($"{KillInSaveVariable}='{text}' is not a step count");
}
