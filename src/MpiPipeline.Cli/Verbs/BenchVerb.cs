using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using MpiPipeline.Benchmarks;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;
using Spectre.Console;

namespace MpiPipeline.Cli.Verbs;

/// <summary>
/// <c>mpipipe bench</c>: one subcommand per layer measured against its limit (the C/C++ baselines under bench/).
/// Subcommands share <see cref="JsonOption"/>, <see cref="RawOption"/> and <see cref="WriteJson"/>.
/// </summary>
internal static class BenchVerb
{
    internal static Command Create()
    {
        var command = new Command(BenchMpiFlags.Verb, "Benchmarks, each comparable with its C/C++ baseline under bench/ (make bench).");
        command.Subcommands.Add(CreateMpi());
        command.Subcommands.Add(BenchBridgeVerb.Create());
        command.Subcommands.Add(BenchCodecVerb.Create());
        return command;
    }

    /// <summary><c>--json FILE</c>: the results as JSON; <c>-</c> writes them to stdout instead of the table.</summary>
    internal static Option<string?> JsonOption() => new(BenchMpiFlags.Json)
    {
        Description = "Also write the results as JSON to FILE ('-' for stdout, instead of the table).",
        HelpName = "FILE",
    };

    /// <summary><c>--raw</c>: one machine-readable line per result, the format the C baseline prints.</summary>
    internal static Option<bool> RawOption() => new("--raw")
    {
        Description = "Print one line per result, 'op size_bytes min_us median_us' (the C baseline's format), instead of the table.",
    };

    /// <summary>Rank 0 writes the JSON text to the file, or to stdout for "-".</summary>
    internal static void WriteJson(string? destination, string json)
    {
        if (destination is null || !RankConsole.IsRoot)
        {
            return;
        }

        if (destination == "-")
        {
            Console.Out.WriteLine(json);
            return;
        }

        AtomicFile.WriteAllText(destination, json + "\n");
    }

    // ---- bench mpi ----

    private static Command CreateMpi()
    {
        var minSize = new Option<string>(BenchMpiFlags.MinSize)
        {
            Description = "Smallest message in bytes (K, KiB, M, MiB, G, GiB suffixes allowed), a power of two >= 4.",
            HelpName = "BYTES",
            DefaultValueFactory = _ => "8",
        };
        var maxSize = new Option<string>(BenchMpiFlags.MaxSize)
        {
            Description = "Largest message, a power of two up to 1 GiB.",
            HelpName = "BYTES",
            DefaultValueFactory = _ => "64MiB",
        };
        var step = new Option<int>(BenchMpiFlags.Step)
        {
            Description = "Factor between successive sizes: 2 or 4 (any power of two).",
            HelpName = "N",
            DefaultValueFactory = _ => 2,
        };
        var ops = new Option<string>(BenchMpiFlags.Ops)
        {
            Description = "Operations, comma-separated: pingpong (ranks 0 and 1), allreduce (SUM of floats, all ranks).",
            HelpName = "LIST",
            DefaultValueFactory = _ => string.Join(",", MpiBenchmarkOps.All.Select(op => op.Name())),
        };
        var iterations = new Option<double>(BenchMpiFlags.Iterations)
        {
            Description = "Scale of the iteration schedule (ops per sample = scale * min(1000, 4 MiB / size), at least 1).",
            HelpName = "SCALE",
            DefaultValueFactory = _ => 1.0,
        };
        var samples = new Option<int>(BenchMpiFlags.Samples)
        {
            Description = "Timed batches per size; min and median are taken over them.",
            HelpName = "N",
            DefaultValueFactory = _ => IterationSchedule.DefaultSamples,
        };
        var warmup = new Option<double>(BenchMpiFlags.Warmup)
        {
            Description = "Seconds of untimed warm-up at the first size of each operation (compiles the hot path).",
            HelpName = "SECONDS",
            DefaultValueFactory = _ => IterationSchedule.FirstWarmupSeconds,
        };
        var json = JsonOption();
        var raw = RawOption();

        var command = new Command(BenchMpiFlags.Subverb, "OSU-style ping-pong and Allreduce latency/bandwidth, min and median per message size.");
        foreach (var option in new Option[] { minSize, maxSize, step, ops, iterations, samples, warmup, json, raw })
        {
            command.Options.Add(option);
        }

        command.Validators.Add(result =>
        {
            var sizesParse = MessageSizes.TryParse(OptionTable.ValueOf(result, minSize), out var min, out var minError);
            if (!sizesParse)
            {
                result.AddError($"--min-size: {minError}");
            }

            if (!MessageSizes.TryParse(OptionTable.ValueOf(result, maxSize), out var max, out var maxError))
            {
                result.AddError($"--max-size: {maxError}");
                sizesParse = false;
            }

            if (sizesParse && MessageSizes.SweepError(min, max, OptionTable.ValueOf(result, step)) is { } sweepError)
            {
                result.AddError(sweepError);
            }

            if (!MpiBenchmarkOps.TryParseList(OptionTable.ValueOf(result, ops), out _, out var opsError))
            {
                result.AddError($"--ops: {opsError}");
            }

            var scale = OptionTable.ValueOf(result, iterations);
            if (!(scale > 0) || double.IsInfinity(scale))
            {
                result.AddError($"--iterations must be a positive number, not {scale.ToString(CultureInfo.InvariantCulture)}");
            }

            if (OptionTable.ValueOf(result, samples) < 1)
            {
                result.AddError("--samples must be at least 1");
            }

            var warmupSeconds = OptionTable.ValueOf(result, warmup);
            if (!(warmupSeconds >= 0) || double.IsInfinity(warmupSeconds))
            {
                result.AddError("--warmup must be a non-negative number of seconds");
            }

            if (OptionTable.ValueOf(result, raw) && OptionTable.ValueOf(result, json) == "-")
            {
                result.AddError("--raw and --json - both write to stdout; give --json a file name");
            }
        });

        command.SetAction(parse =>
        {
            // The validator above accepted every value, so these parse.
            MessageSizes.TryParse(parse.GetValue(minSize), out var min, out _);
            MessageSizes.TryParse(parse.GetValue(maxSize), out var max, out _);
            MpiBenchmarkOps.TryParseList(parse.GetValue(ops), out var opList, out _);
            var options = new MpiBenchmarkOptions(
                MessageSizes.Sweep(min, max, parse.GetValue(step)),
                opList,
                parse.GetValue(iterations),
                parse.GetValue(samples),
                parse.GetValue(warmup));
            return MpiRuntime.Run(world => RunMpi(world, options, parse.GetValue(json), parse.GetValue(raw)));
        });
        return command;
    }

    private static int RunMpi(Communicator world, MpiBenchmarkOptions requested, string? json, bool raw)
    {
        if (json is not (null or "-") && RankConsole.IsRoot)
        {
            AtomicFile.CheckWritable(json, "--json");
        }

        var options = requested.ForWorldSize(world.Size, out var note);
        var notes = note is null ? new List<string>() : [note];
        if (note is not null && RankConsole.IsRoot)
        {
            Console.Error.WriteLine($"mpipipe bench mpi: {note}");
        }

        var library = MpiEnvironment.LibraryVersion().Split('\n')[0].Replace('\t', ' ').Trim();
        var abi = MpiEnvironment.Abi.ToString();
        if (raw)
        {
            RankConsole.Line($"# mpipipe bench mpi (C#) ranks={world.Size} library: {library}");
            RankConsole.Line($"# thread level provided: {MpiEnvironment.ThreadLevel} (MPI_Init_thread MULTIPLE asked for)");
            RankConsole.Line(MpiBenchmarkResult.RawHeader);
        }

        var results = new MpiBenchmark(world, options).Run(result =>
        {
            if (raw && RankConsole.IsRoot)
            {
                Console.Out.WriteLine(result.RawLine);
                Console.Out.Flush();
            }
        });

        WriteJson(json, MpiBenchmarkReport.Create(library, abi, world.Size, options, notes, results).ToJson());
        if (!raw && json != "-" && RankConsole.IsRoot)
        {
            AnsiConsole.Write(Table(library, world.Size, options, results));
        }

        return 0;
    }

    private static Table Table(string library, int worldSize, MpiBenchmarkOptions options, IReadOnlyList<MpiBenchmarkResult> results)
    {
        var table = new Table()
            .Border(TableBorder.Simple)
            .Title(Markup.Escape($"{library.Split(',')[0]}, {worldSize} ranks"))
            .Caption(Markup.Escape($"{options.Samples} samples per size; ping-pong: one way (half a round trip); MB/s: 10^6 B/s"))
            .AddColumn("op")
            .AddColumn(new TableColumn("size").RightAligned())
            .AddColumn(new TableColumn("ops/sample").RightAligned())
            .AddColumn(new TableColumn("min µs").RightAligned())
            .AddColumn(new TableColumn("median µs").RightAligned())
            .AddColumn(new TableColumn("MB/s (median)").RightAligned())
            .AddColumn(new TableColumn("MB/s (min)").RightAligned());
        foreach (var r in results)
        {
            table.AddRow(
                r.Op.Name(),
                MessageSizes.Label(r.SizeBytes),
                r.OpsPerSample.ToString(CultureInfo.InvariantCulture),
                r.MinMicroseconds.ToString("F2", CultureInfo.InvariantCulture),
                r.MedianMicroseconds.ToString("F2", CultureInfo.InvariantCulture),
                r.MedianBandwidthMBps.ToString("F1", CultureInfo.InvariantCulture),
                r.PeakBandwidthMBps.ToString("F1", CultureInfo.InvariantCulture));
        }

        return table;
    }
}
