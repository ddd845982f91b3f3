using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using MpiPipeline.Dicod;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Cli.Verbs;

/// <summary>
/// <c>mpipipe dicod</c>: convolutional sparse coding of a long signal (Moreau, Oudre, Vayatis, ICML 2018) by DICOD over
/// the ranks of the job, or by a one-rank baseline (greedy CD, LGCD, FISTA); rank 0 prints the result and writes it as
/// JSON. <c>mpipipe dicod report</c> turns a folder of such JSON files into bench/results/dicod.md and its plots.
/// </summary>
internal static class DicodVerb
{
    internal static Command Create()
    {
        var table = Options();
        var output = new Option<string?>("--output") { Description = "Write the results (objective, updates, times, per-rank counts, convergence curve) as JSON to FILE (rank 0)." };
        var command = new Command("dicod", "Convolutional sparse coding by DICOD over the ranks (or greedy CD, LGCD, FISTA on one rank): synthetic or --signal data.");

        // Every bad value, the split over the launcher's ranks included, is a usage error at parse time: printed once
        // by rank 0, exit 2 on every rank, before MPI starts.
        table.AddTo(command, o => o.Problems(LauncherRanks()));
        command.Options.Add(output);
        command.SetAction(parse =>
        {
            var options = table.Read(parse);
            var path = parse.GetValue(output);
            return MpiRuntime.Run(world => Run(world, options, path));
        });
        command.Subcommands.Add(DicodReportCommand.Create());
        return command;
    }

    /// <summary>The options of <see cref="DicodOptions"/>, with its defaults.</summary>
    internal static OptionTable<DicodOptions> Options()
    {
        var t = new OptionTable<DicodOptions>();
        t.Add("--atoms", "K, the number of atoms (synthetic dictionary).", o => o.Atoms, (o, v) => o with { Atoms = v });
        t.Add("--atom-length", "L, the atoms' length (synthetic dictionary).", o => o.AtomLength, (o, v) => o with { AtomLength = v });
        t.Add("--length", "T, the synthetic signal's length.", o => o.Length, (o, v) => o with { Length = v });
        t.Add("--channels", "P, the synthetic signal's channels.", o => o.Channels, (o, v) => o with { Channels = v });
        t.Add("--lambda", "lambda, the weight of the l1 penalty (absolute; the run prints lambda_max, above which Z = 0).", o => o.Lambda, (o, v) => o with { Lambda = v });
        t.Add("--tol", "tol: coordinate descent stops when no coordinate would move by more than tol (FISTA: when none moved more).", o => o.Tol, (o, v) => o with { Tol = v });
        t.Add("--seed", "Seed of the synthetic dictionary and signal (the same problem at every rank count).", o => o.Seed, (o, v) => o with { Seed = v });
        t.Add("--density", "rho: probability that a synthetic activation is non-zero.", o => o.Density, (o, v) => o with { Density = v });
        t.Add("--noise", "sigma: standard deviation of the synthetic signal's Gaussian noise.", o => o.Noise, (o, v) => o with { Noise = v });
        t.Add("--signal", "A real signal: a .npy file of float32 or float64, shape (T,) or (P, T), C order (numpy.save). Nothing is learned: the dictionary comes from --dictionary or the generator.",
            o => o.SignalPath, (o, v) => o with { SignalPath = v });
        t.Add("--dictionary", "The atoms: a .npy file of float32 or float64, shape (K, L) or (K, P, L), C order; without it the generator draws K x P x L.",
            o => o.DictionaryPath, (o, v) => o with { DictionaryPath = v });
        t.Add("--solver", string.Join(" | ", DicodExperiment.Solvers.Select(s => $"{s.Name}: {s.Help}")), o => o.Solver, (o, v) => o with { Solver = v })
            .AcceptOnlyFromAmong([.. DicodExperiment.SolverNames]);
        t.Add("--local", "DICOD's choice on each rank's segment: greedy (the paper's DICOD) | lgcd (sub-segments, as the authors' dicodile).",
            o => o.Local, (o, v) => o with { Local = v }).AcceptOnlyFromAmong([.. DicodExperiment.LocalChoices]);
        t.Add("--sub-segments", "M, LGCD's sub-segments (per rank for --local lgcd); 0: one per 2L - 1 coordinates.", o => o.SubSegments, (o, v) => o with { SubSegments = v });
        t.Add("--max-updates", "Coordinate descent stops after this many updates (per rank) even above tol.", o => o.MaxUpdates, (o, v) => o with { MaxUpdates = v });
        t.Add("--max-iterations", "FISTA stops after this many iterations even above tol.", o => o.MaxIterations, (o, v) => o with { MaxIterations = v });
        return t;
    }

    /// <summary>The job's size as the launcher announced it (1 outside a launcher): checks at parse time need it.</summary>
    private static int LauncherRanks() =>
        MpiEnvironment.ExpectedWorldSize(MpiLibrary.CurrentEnvironment()) is (_, var size) ? size : 1;

    private static int Run(Communicator world, DicodOptions options, string? output)
    {
        if (world.Rank == 0 && output is not null)
        {
            AtomicFile.CheckWritable(output, "--output");
        }

        var result = DicodExperiment.Run(world, options);
        var p = result.Problem;
        RankConsole.Line($"dicod: {(p.Signal is null ? "synthetic signal" : $"signal {p.Signal}")}, P = {p.Channels}, T = {p.Length}; " +
            $"{(p.Dictionary is null ? "synthetic atoms" : $"atoms {p.Dictionary}")}, K = {p.Atoms}, L = {p.AtomLength}; lambda = {G(p.Lambda)} (lambda_max = {G(p.LambdaMax)}), tol = {G(p.Tol)}");
        var table = new MarkdownTable("solver", "ranks", "objective", "updates", "seconds", "converged", "non-zeros");
        table.AddRow(result.Solver + (result.Solver == "dicod" ? $" ({result.Local})" : ""), result.Ranks.ToString(CultureInfo.InvariantCulture), G(result.Objective),
            result.Updates.ToString(CultureInfo.InvariantCulture), result.Seconds.ToString("F3", CultureInfo.InvariantCulture), result.Converged ? "yes" : "no",
            result.NonZeros.ToString(CultureInfo.InvariantCulture));
        RankConsole.Line(table.ToString());
        if (result.Solver == "dicod")
        {
            RankConsole.Line($"segments start at {string.Join(' ', result.SegmentStarts)}; updates per rank {string.Join(' ', result.UpdatesPerRank)}; " +
                $"border messages per rank {string.Join(' ', result.MessagesPerRank)}; termination after {result.Probes} probe(s) of Safra's token; " +
                $"max |beta - beta(gathered Z)| = {G(result.BetaMaxDeviation)} (max |beta| = {G(result.BetaScale)})");
        }

        if (world.Rank == 0 && output is not null)
        {
            AtomicFile.WriteAllText(output, JsonSerializer.Serialize(result, ResultsJson.Options) + "\n");
        }

        return 0;
    }

    private static string G(double value) => value.ToString("G7", CultureInfo.InvariantCulture);
}
