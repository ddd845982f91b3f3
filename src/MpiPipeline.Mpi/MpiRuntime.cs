namespace MpiPipeline.Mpi;

/// <summary>
/// The one entry point every rank runs the program through (after MPI.NET's Environment.Run): initialize MPI,
/// run the body, finalize. Any exception on any rank - or on any thread - prints <c>rank R: message</c> once to
/// stderr and calls MPI_Abort, so the whole job exits non-zero within seconds instead of leaving peers blocked.
/// </summary>
public static class MpiRuntime
{
    private static int aborting;

    /// <summary>How long a failing rank waits after printing, before it exits or aborts, so the launcher forwards the text.</summary>
    public static readonly TimeSpan OutputGracePeriod = TimeSpan.FromMilliseconds(500);

    /// <summary>Runs <paramref name="body"/> on MPI_COMM_WORLD; returns the process exit code.</summary>
    public static int Run(Func<Communicator, int> body, TextWriter? errors = null)
    {
        errors ??= Console.Error;
        var rank = MpiEnvironment.LauncherRank();
        AppDomain.CurrentDomain.UnhandledException += (_, e) =>
            Fail(e.ExceptionObject as Exception ?? new Exception(e.ExceptionObject?.ToString()), rank, errors);
        try
        {
            MpiEnvironment.Initialize();
            rank = MpiEnvironment.World.Rank;
            Watchdog.Start(
                message => Report(errors, rank, message),
                () => MpiEnvironment.Abort(3));
            var code = body(MpiEnvironment.World);
            Watchdog.Stop();
            MpiEnvironment.FinalizeIfOwned();
            return code;
        }
        catch (Exception ex)
        {
            return Fail(ex, rank, errors);
        }
    }

    /// <summary>The message a user sees for an exception: no stack trace unless MPIPIPE_DEBUG is set.</summary>
    public static string Describe(Exception ex)
    {
        var debug = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("MPIPIPE_DEBUG"));
        if (debug)
        {
            return ex.ToString();
        }

        return ex switch
        {
            InputException or MpiException or MpiLibraryException => ex.Message,
            AggregateException { InnerExceptions.Count: 1 } agg => Describe(agg.InnerExceptions[0]),
            _ when ex.GetType().Namespace?.StartsWith("MpiPipeline", StringComparison.Ordinal) == true => ex.Message,
            _ => $"{ex.GetType().Name}: {ex.Message} (set MPIPIPE_DEBUG=1 for the stack trace)",
        };
    }

    private static int Fail(Exception ex, int rank, TextWriter errors)
    {
        var exitCode = ex is InputException input ? input.ExitCode : 1;
        if (Interlocked.Exchange(ref aborting, 1) != 0)
        {
            return exitCode;
        }

        var collective = ex is InputException { SameOnEveryRank: true };
        if (!collective || rank == 0)
        {
            Report(errors, rank, Describe(ex));
        }

        if (!MpiLibrary.IsLoaded || !MpiEnvironment.IsInitialized || MpiEnvironment.IsFinalized)
        {
            return exitCode;
        }

        if (collective && rank != 0)
        {
            // Rank 0 reports it and aborts the job; give it time to print before this rank's abort could kill it.
            Thread.Sleep(2000);
        }

        // The launcher forwards output through pipes that MPI_Abort tears down: give it a moment to read them.
        Thread.Sleep(OutputGracePeriod);
        Watchdog.Stop();
        MpiEnvironment.Abort(exitCode);
        return exitCode;
    }

    private static void Report(TextWriter errors, int rank, string message)
    {
        lock (errors)
        {
            errors.WriteLine($"rank {rank}: {message}");
            errors.Flush();
        }
    }
}
