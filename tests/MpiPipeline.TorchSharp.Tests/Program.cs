using MpiPipeline.Mpi;

namespace MpiPipeline.TorchSharp.Tests;

/// <summary>The rank program: <c>scenario [--throw-rank R]</c> under mpiexec (the test host never calls this).</summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] != "scenario")
        {
            Console.Error.WriteLine("usage: MpiPipeline.TorchSharp.Tests scenario [--throw-rank R]");
            return 2;
        }

        var throwRank = args.Length == 3 && args[1] == "--throw-rank" ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : -1;
        return MpiRuntime.Run(world => Scenario.Run(world, throwRank));
    }
}
