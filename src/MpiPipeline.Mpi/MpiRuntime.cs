namespace MpiPipeline.Mpi;

/// <summary>
/// The one entry point every rank runs the program through (after MPI.NET's Environment.Run): initialize MPI,
/// run the body, finalize. Any exception on any rank - or on any thread - prints <c>rank R: message</c> once to
/// stderr and calls MPI_Abort, so the whole job exits non-zero within seconds instead of leaving peers blocked. An
/// error every rank sees (<see cref="InputException.SameOnEveryRank"/>) is printed by rank 0 alone; a rank that saw
/// it while rank 0 did not prints it itself.
/// </summary>
public static class MpiRuntime
{
    private static int aborting;

    /// <summary>How long a failing rank waits after printing, before it exits or aborts, so the launcher forwards the text.</summary>
    public static readonly TimeSpan OutputGracePeriod = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// How long a non-zero rank with a same-on-every-rank error waits for rank 0's abort before it reports the error
    /// itself: rank 0's report, its output grace and the launcher's teardown, with room for ranks that reach the error
    /// a little apart.
    /// </summary>
    public static readonly TimeSpan RankZeroReportWait = TimeSpan.FromSeconds(3);

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
            if (DebugRequested)
            {
                // A launcher that reports a dead process by pid and host only (MPICH's hydra, after kill -9) can be
                // matched to a rank with these lines; the survivors cannot say it, as hydra kills them at once.
                Report(errors, rank, $"pid {Environment.ProcessId} on host {MpiEnvironment.ProcessorName()}");
            }

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

    /// <summary>MPIPIPE_DEBUG is set: stack traces in messages, and each rank's pid and host at the start.</summary>
    private static bool DebugRequested => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("MPIPIPE_DEBUG"));

    /// <summary>The message a user sees for an exception: no stack trace unless MPIPIPE_DEBUG is set.</summary>
    public static string Describe(Exception ex)
    {
        if (DebugRequested)
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

        var canAbort = MpiLibrary.IsLoaded && MpiEnvironment.IsInitialized && !MpiEnvironment.IsFinalized;
        if (!canAbort && rank != 0 && ex is MpiLibraryException)
        {
            // An MPI library that cannot be loaded (MPIPIPE_MPI_LIB, the same setting on every rank) is found before
            // MPI is up, where no rank can end another and every rank exits on its own: rank 0 reports it. A launcher
            // that ends the job at the first non-zero exit (Open MPI's) must not end rank 0 before it has printed.
            Thread.Sleep(OutputGracePeriod * 3);
            return exitCode;
        }

        if (ex is InputException { SameOnEveryRank: true } && rank != 0)
        {
            if (!canAbort)
            {
                // Before MPI is up no rank can end another, and every rank exits on its own: rank 0 reports (given
                // time to, as above).
                Thread.Sleep(OutputGracePeriod * 3);
                return exitCode;
            }

            // "Same on every rank" is a claim about the input, not a guarantee: one node's corrupt copy of the data
            // fails on that node alone. This rank cannot learn whether rank 0 saw the error too without a collective
            // that rank 0 may never reach, so it waits: if rank 0 saw it, rank 0 reports it and its MPI_Abort ends
            // this process within the wait; a rank still alive afterwards reports the error itself, as rank 0 is
            // blocked elsewhere, waiting for this one. (A flag reduction at fixed points such as data loading would
            // be exact there, and silent for an error anywhere else.) The price: a second copy of the message when
            // rank 0 reaches the same error more than the wait later than this rank.
            Thread.Sleep(RankZeroReportWait);
        }

        Report(errors, rank, Describe(ex));
        if (!canAbort)
        {
            return exitCode;
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
