using System.CommandLine;
using MpiPipeline.Cli;
using MpiPipeline.Cli.Verbs;
using MpiPipeline.Mpi;

// Every rank runs this program (SPMD). Arguments are parsed before MPI starts, identically on every rank:
// a usage error is printed once (by the launcher's rank 0) and every rank exits with code 2.

// Tables written to a log file (or through mpiexec's pipes or Open MPI's pseudo-terminals) get plain text and a fixed
// width instead of escape codes and a truncating 80 columns. First, before anything touches the console.
RankConsole.ConfigureOutput();

var root = new RootCommand("MpiPipeline: distributed training and distributed optimization over MPI and libtorch.");
root.Subcommands.Add(InfoVerb.Create());
root.Subcommands.Add(TrainVerb.Create());
root.Subcommands.Add(CompareVerb.Create());
root.Subcommands.Add(CompressionVerb.Create());
root.Subcommands.Add(BenchVerb.Create());
root.Subcommands.Add(ScalingVerb.Create());
root.Subcommands.Add(PprsVerb.Create());
root.Subcommands.Add(DicodVerb.Create());
root.Subcommands.Add(SpeedupVerb.Create());
root.Subcommands.Add(PlanVerb.Create());
root.Subcommands.Add(LayerLoadVerb.Create());

var launcherRank = MpiEnvironment.LauncherRank();
var parsed = CommandLineParsing.Parse(root, args);
if (parsed.Errors.Count > 0)
{
    if (launcherRank == 0)
    {
        foreach (var error in parsed.Errors)
        {
            Console.Error.WriteLine($"mpipipe: {error.Message}");
        }

        Console.Error.WriteLine("Run 'mpipipe --help' for usage.");
        Console.Error.Flush();
        Thread.Sleep(MpiRuntime.OutputGracePeriod);
    }
    else
    {
        // Rank 0 reports; a launcher that kills the job on the first non-zero exit must not kill it first.
        Thread.Sleep(MpiRuntime.OutputGracePeriod * 3);
    }

    return 2;
}

return parsed.Invoke(new InvocationConfiguration
{
    Output = launcherRank == 0 ? Console.Out : TextWriter.Null,
    Error = launcherRank == 0 ? Console.Error : TextWriter.Null,
    EnableDefaultExceptionHandler = false,
});
