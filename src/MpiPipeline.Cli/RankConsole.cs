using MpiPipeline.Mpi;

namespace MpiPipeline.Cli;

/// <summary>
/// Console output of an SPMD program: rank 0 alone prints <see cref="Line"/>; a verb that wants every rank's
/// words uses <see cref="AnyRank"/>, whose lines carry the rank.
/// </summary>
internal static class RankConsole
{
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
