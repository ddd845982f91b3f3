using System.Diagnostics;

namespace MpiPipeline.RankTests;

/// <summary>One of the two MPI installations the tests launch for real, with the flags the binding notes name.</summary>
public sealed record MpiFlavor(string Name, string Launcher, string[] Flags, (string Key, string Value)[] Environment)
{
    /// <summary>Debian's MPICH: hydra's mpiexec.mpich; HYDRA_IFACE=lo so an unresolvable hostname cannot hang it.</summary>
    public static readonly MpiFlavor Mpich = new("mpich", "mpiexec.mpich", [], [("HYDRA_IFACE", "lo")]);

    /// <summary>Debian's Open MPI: root and more ranks than cores need flags; TERM=dumb because ranks get a pty.</summary>
    public static readonly MpiFlavor OpenMpi = new("openmpi", "mpirun.openmpi", ["--allow-run-as-root", "--oversubscribe"], [("TERM", "dumb")]);

    public static IEnumerable<MpiFlavor> All => [Mpich, OpenMpi];

    public override string ToString() => Name;
}

public sealed record LaunchResult(int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed, bool TimedOut)
{
    public string Output => Stdout + Stderr;

    public override string ToString() =>
        $"exit {ExitCode} after {Elapsed.TotalSeconds:F1} s{(TimedOut ? " (TIMED OUT)" : "")}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>Starts a real mpiexec on a .NET program and collects what it printed.</summary>
public static class MpiLauncher
{
    public static string Bin => AppContext.BaseDirectory;
    public static string Scenarios => Path.Combine(Bin, "RankScenarios.dll");
    public static string Mpipipe => Path.Combine(Bin, "mpipipe.dll");

    public static LaunchResult Launch(MpiFlavor flavor, int ranks, string dll, IEnumerable<string> args,
        TimeSpan? timeout = null, IEnumerable<(string Key, string Value)>? environment = null) =>
        LaunchProgram(flavor, ranks, ["dotnet", dll, .. args], timeout, environment);

    /// <summary>mpiexec -n <paramref name="ranks"/> on any program: <paramref name="command"/> is the program and its arguments.</summary>
    public static LaunchResult LaunchProgram(MpiFlavor flavor, int ranks, IEnumerable<string> command,
        TimeSpan? timeout = null, IEnumerable<(string Key, string Value)>? environment = null) =>
        Run(flavor.Launcher, [.. flavor.Flags, "-n", ranks.ToString(), .. command], timeout ?? TimeSpan.FromSeconds(60),
            [.. flavor.Environment, .. (environment ?? [])]);

    /// <summary>mpipipe as make and the scaling driver start it: a plain process, no mpiexec (an MPI singleton).</summary>
    public static LaunchResult RunMpipipe(IEnumerable<string> args, TimeSpan timeout) => Run("dotnet", [Mpipipe, .. args], timeout);

    public static LaunchResult Run(string program, IEnumerable<string> args, TimeSpan timeout,
        IEnumerable<(string Key, string Value)>? environment = null)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment ?? [])
        {
            start.Environment[key] = value;
        }

        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {start.FileName}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var finished = process.WaitForExit(timeout);
        if (!finished)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }

        watch.Stop();
        return new LaunchResult(finished ? process.ExitCode : -1, stdout.Result, stderr.Result, watch.Elapsed, !finished);
    }

    public static int Count(string text, string what)
    {
        var count = 0;
        for (var at = text.IndexOf(what, StringComparison.Ordinal); at >= 0; at = text.IndexOf(what, at + what.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }
}
