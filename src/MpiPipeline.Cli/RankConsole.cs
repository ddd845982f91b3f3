using MpiPipeline.Mpi;

namespace MpiPipeline.Cli;

/// <summary>
/// Console output of an SPMD program: rank 0 alone prints <see cref="Line"/>; a verb that wants every rank's
/// words uses <see cref="AnyRank"/>, whose lines carry the rank.
/// </summary>
internal static class RankConsole
{
    /// <summary>
    /// Sets up the console before anything is written: plain text, 160 columns wide, whenever the output is not the
    /// user's terminal. Open MPI gives every rank a pseudo-terminal as stdout and forwards what it reads to mpirun's
    /// own stdout (a pipe, a log file, or a terminal: the rank cannot tell). Seeing a terminal, .NET writes the
    /// terminfo "keypad transmit" sequence (ESC [?1h ESC =) before the first line and Spectre.Console would add colours
    /// and cut tables at 80 columns; TERM=dumb has no such sequence, and plain text is right for every destination.
    /// </summary>
    public static void ConfigureOutput()
    {
        var forwardedTerminal = !Console.IsOutputRedirected
            && Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null;
        if (forwardedTerminal)
        {
            // Read by .NET's terminfo lookup when the console is first used, which has not happened yet.
            Environment.SetEnvironmentVariable("TERM", "dumb");
        }

        if (forwardedTerminal || Console.IsOutputRedirected)
        {
            var profile = Spectre.Console.AnsiConsole.Profile;
            profile.Width = 160;
            profile.Capabilities.Ansi = false;
            profile.Capabilities.ColorSystem = Spectre.Console.ColorSystem.NoColors;
            profile.Capabilities.Interactive = false;
        }
    }

    public static bool IsRoot => !MpiEnvironment.IsInitialized || MpiEnvironment.World.Rank == 0;

    public static void Line(string text = "")
    {
        if (IsRoot)
        {
            Console.Out.WriteLine(text);
        }
    }

    public static void AnyRank(string text)
    {
        var rank = MpiEnvironment.IsInitialized ? MpiEnvironment.World.Rank : MpiEnvironment.LauncherRank();
        Console.Out.WriteLine(rank == 0 ? text : $"[rank {rank}] {text}");
    }
}
