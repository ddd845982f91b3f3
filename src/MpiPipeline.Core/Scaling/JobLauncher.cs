using System.Diagnostics;
using System.Globalization;
using System.Text;
using MpiPipeline.Mpi;

namespace MpiPipeline.Scaling;

/// <summary>
/// Starts one MPI job of the sweep: <c>srun</c> inside a Slurm allocation, the MPI's own mpiexec elsewhere
/// (<c>mpiexec.mpich</c>, or <c>mpirun.openmpi --oversubscribe</c>), with the flags and environment the binding notes
/// name (HYDRA_IFACE=lo on one machine, TERM=dumb and --allow-run-as-root for Open MPI, the library override for
/// <c>srun --mpi=pmix</c>). One job has a fixed world size, so the sweep starts one job per run.
/// </summary>
internal sealed class JobLauncher
{
    private readonly IReadOnlyDictionary<string, string?> environment;

    private JobLauncher(ScalingOptions options, IReadOnlyList<string> program, IReadOnlyDictionary<string, string?> environment)
    {
        this.environment = environment;
        Program = program;
        Mpi = options.Mpi;
        Hostfile = options.Hostfile;
        Network = options.Network;
        JobId = Get("SLURM_JOB_ID");
        Kind = options.Launcher switch
        {
            LauncherKind.Auto => JobId is null ? LauncherKind.Mpiexec : LauncherKind.Srun,
            var kind => kind,
        };
        SrunMpi = options.SrunMpi ?? (Mpi == MpiFlavor.OpenMpi ? "pmix" : "pmi2");
        AllocatedTasks = int.TryParse(Get("SLURM_NTASKS"), out var tasks) ? tasks : null;
        Cores = AllocatedCores(environment) ?? Environment.ProcessorCount;
        if (Kind == LauncherKind.Srun && JobId is null)
        {
            throw new InputException("--launcher srun needs a Slurm allocation (SLURM_JOB_ID is unset): run inside sbatch/salloc, or use --launcher mpiexec");
        }

        if (Kind == LauncherKind.Srun && Network is not null)
        {
            throw new InputException($"--network emulates a network on one machine around mpiexec; inside Slurm job {JobId} the launcher would be srun: add --launcher mpiexec (this node only) or drop --network");
        }
    }

    /// <summary>The program every rank runs: mpipipe's path, or dotnet and mpipipe.dll.</summary>
    public IReadOnlyList<string> Program { get; }

    /// <summary>Mpiexec or Srun (Auto resolved).</summary>
    public LauncherKind Kind { get; }

    public MpiFlavor Mpi { get; }
    public string SrunMpi { get; }
    public string? Hostfile { get; }
    public string? JobId { get; }
    public int? AllocatedTasks { get; }

    /// <summary>The emulated network every job runs inside (bench/network/emulate.sh); null: none.</summary>
    public EmulatedNetwork? Network { get; }

    /// <summary>The launcher script that makes <see cref="Network"/>: the copy beside the program.</summary>
    public string NetworkScript => EmulatedNetwork.ScriptPath;

    /// <summary>Cores the jobs may use: the allocation's CPUs (SLURM_CPUS_ON_NODE x nodes) or this machine's.</summary>
    public int Cores { get; }

    /// <summary>A launcher for <paramref name="program"/>; refuses to run as one rank of an MPI job itself.</summary>
    public static JobLauncher Create(ScalingOptions options, IReadOnlyList<string> program, IReadOnlyDictionary<string, string?> environment)
    {
        foreach (var variable in new[] { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS" })
        {
            if (environment.TryGetValue(variable, out var text) && int.TryParse(text, out var size) && size > 1)
            {
                throw new InputException($"mpipipe scaling starts its own MPI jobs; run it as one plain process, not under mpiexec/srun ({variable}={size})");
            }
        }

        return new JobLauncher(options, program, environment);
    }

    /// <summary>The environment of this process, for <see cref="Create"/>.</summary>
    public static IReadOnlyDictionary<string, string?> CurrentEnvironment() =>
        Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value);

    public string Describe() => Kind == LauncherKind.Srun
        ? $"srun --mpi={SrunMpi} in Slurm job {JobId} ({AllocatedTasks?.ToString(CultureInfo.InvariantCulture) ?? "?"} tasks, {Cores} CPUs)"
        : $"{LauncherProgram} on {(Hostfile is null ? $"this machine ({Cores} cores)" : $"the hosts of {Hostfile}")}" +
          (Network is null ? "" : $", inside an emulated network ({Network}, {Path.GetFileName(NetworkScript)})");

    private string LauncherProgram => Kind == LauncherKind.Srun ? "srun" : Mpi == MpiFlavor.Mpich ? "mpiexec.mpich" : "mpirun.openmpi";

    /// <summary>The command line for <paramref name="ranks"/> ranks of `mpipipe ARGS`.</summary>
    public ProcessStartInfo Command(int ranks, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(LauncherProgram)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        var args = start.ArgumentList;
        if (Kind == LauncherKind.Srun)
        {
            args.Add($"--mpi={SrunMpi}");
            args.Add("-n");
            args.Add(ranks.ToString(CultureInfo.InvariantCulture));
            args.Add("--kill-on-bad-exit=1");
            if (AllocatedTasks is int tasks && ranks > tasks)
            {
                args.Add("--overcommit");
            }

            if (Mpi == MpiFlavor.OpenMpi && Get(MpiLibrary.OverrideVariable) is null)
            {
                start.Environment[MpiLibrary.OverrideVariable] = "libmpi.so.40";
            }
        }
        else if (Mpi == MpiFlavor.Mpich)
        {
            if (Hostfile is not null)
            {
                args.Add("-f");
                args.Add(Hostfile);
            }
            else if (Get("HYDRA_IFACE") is null && JobId is null)
            {
                start.Environment["HYDRA_IFACE"] = "lo";
            }

            args.Add("-n");
            args.Add(ranks.ToString(CultureInfo.InvariantCulture));
        }
        else
        {
            args.Add("--oversubscribe");
            if (Environment.IsPrivilegedProcess)
            {
                args.Add("--allow-run-as-root");
            }

            if (Hostfile is not null)
            {
                args.Add("--hostfile");
                args.Add(Hostfile);
            }

            args.Add("-n");
            args.Add(ranks.ToString(CultureInfo.InvariantCulture));
        }

        if (Mpi == MpiFlavor.OpenMpi)
        {
            start.Environment["TERM"] = "dumb";
        }

        foreach (var word in Program.Concat(arguments))
        {
            args.Add(word);
        }

        Network?.Wrap(start, NetworkScript);
        return start;
    }

    /// <summary>The command as one shell-like line, for logs and reports.</summary>
    public static string Format(ProcessStartInfo start) =>
        string.Join(' ', new[] { start.FileName }.Concat(start.ArgumentList).Select(Quote));

    /// <summary>
    /// Runs <paramref name="start"/>, everything it prints going to <paramref name="logPath"/>; kills the whole process
    /// tree after <paramref name="timeout"/>. Returns the exit code, or null on a timeout.
    /// </summary>
    public static int? Run(ProcessStartInfo start, string logPath, TimeSpan timeout)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(logPath))!);
        using var log = new StreamWriter(logPath, append: false, new UTF8Encoding(false)) { AutoFlush = true };
        log.WriteLine($"$ {Format(start)}");
        var gate = new object();
        void Append(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (gate)
            {
                log.WriteLine(line);
            }
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InputException($"could not start {start.FileName}");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InputException($"could not start {start.FileName}: {ex.Message} (is it installed and on PATH?)");
        }

        using (process)
        {
            process.OutputDataReceived += (_, e) => Append(e.Data);
            process.ErrorDataReceived += (_, e) => Append(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            process.StandardInput.Close();
            if (!process.WaitForExit(timeout))
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
                Append($"(killed after {timeout.TotalSeconds:F0} s)");
                return null;
            }

            process.WaitForExit();
            return process.ExitCode;
        }
    }

    private string? Get(string name) => environment.TryGetValue(name, out var value) && !string.IsNullOrEmpty(value) ? value : null;

    private static int? AllocatedCores(IReadOnlyDictionary<string, string?> env)
    {
        if (!env.TryGetValue("SLURM_JOB_ID", out var job) || string.IsNullOrEmpty(job))
        {
            return null;
        }

        var perNode = env.TryGetValue("SLURM_CPUS_ON_NODE", out var c) && int.TryParse(c, out var cpus) ? cpus : (int?)null;
        var nodes = env.TryGetValue("SLURM_JOB_NUM_NODES", out var n) && int.TryParse(n, out var count) ? count : 1;
        return perNode * nodes;
    }

    private static string Quote(string word) =>
        word.Length > 0 && word.All(ch => char.IsAsciiLetterOrDigit(ch) || "-_./:=,+@%".Contains(ch)) ? word : $"'{word.Replace("'", "'\\''", StringComparison.Ordinal)}'";
}
