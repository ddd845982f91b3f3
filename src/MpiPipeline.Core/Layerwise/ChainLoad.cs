using System.Diagnostics;
using System.Globalization;
using MpiPipeline.Torch;

namespace MpiPipeline.Layerwise;

/// <summary>
/// The other ranks' load while <see cref="MeasuredLayerTimes.MeasureChain"/> times a chain: <c>copies</c> processes
/// (the hidden verb <c>mpipipe layer-load</c>) that step the same chain, free-running, until the measurement ends. The
/// engine's ranks are processes, each with its own heap; copies on threads of the measuring process shared its heap
/// and its allocator's lock and ran the cnn's data-parallel chain 15-20% slower than two processes did. Without the
/// <c>mpipipe</c> executable beside this assembly the copies run on threads.
/// </summary>
internal sealed class ChainLoad : IDisposable
{
    /// <summary>The hidden verb a load process runs.</summary>
    public const string Verb = "layer-load";

    private const string ReadyLine = "ready";

    private readonly List<Process> processes = [];
    private readonly List<Thread> threads = [];
    private volatile bool stop;

    private ChainLoad()
    {
    }

    /// <summary>Starts <paramref name="copies"/> copies of <paramref name="chain"/> and returns once each has warmed up and steps.</summary>
    public static ChainLoad Start(IReadOnlyList<ComputeShard> chain, int copies, int torchThreads)
    {
        var load = new ChainLoad();
        var executable = Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "mpipipe.exe" : "mpipipe");
        try
        {
            for (var k = 0; k < copies; k++)
            {
                if (File.Exists(executable))
                {
                    load.StartProcess(executable, chain, torchThreads);
                }
                else
                {
                    load.StartThread(chain);
                }
            }
        }
        catch
        {
            load.Dispose();
            throw;
        }

        return load;
    }

    private void StartProcess(string executable, IReadOnlyList<ComputeShard> chain, int torchThreads)
    {
        var start = new ProcessStartInfo(executable, [Verb])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };

        // Compiled once, up front: tiered compilation would recompile the hot paths on a background thread while the
        // measurement runs beside it.
        start.Environment["DOTNET_TieredCompilation"] = "0";
        var process = Process.Start(start) ?? throw new InputException($"could not start {executable} {Verb}, the layer-time measurement's load");
        processes.Add(process);
        var errors = process.StandardError.ReadToEndAsync();
        process.StandardInput.Write(Format(chain, torchThreads));
        process.StandardInput.Flush();
        var line = process.StandardOutput.ReadLineAsync();
        if (!line.Wait(TimeSpan.FromMinutes(2)) || line.Result != ReadyLine)
        {
            if (!process.HasExited)
            {
                process.Kill();
            }

            process.WaitForExit();
            throw new InputException($"{executable} {Verb}, the layer-time measurement's load, did not start stepping: {errors.Result.Trim()}");
        }
    }

    private void StartThread(IReadOnlyList<ComputeShard> chain)
    {
        using var ready = new ManualResetEventSlim();
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                Step(chain, () => stop, ready.Set);
            }
            catch (Exception error)
            {
                failure = error;
                ready.Set();
            }
        });
        threads.Add(thread);
        thread.Start();
        ready.Wait();
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    }

    /// <summary>Ends every copy (a process when its input closes, after the step it is in) and waits for them.</summary>
    public void Dispose()
    {
        stop = true;
        foreach (var process in processes)
        {
            try
            {
                process.StandardInput.Close();
                if (!process.WaitForExit(TimeSpan.FromSeconds(30)))
                {
                    process.Kill();
                    process.WaitForExit();
                }
            }
            finally
            {
                process.Dispose();
            }
        }

        threads.ForEach(t => t.Join());
    }

    /// <summary>The chain as the load process reads it: <c>threads N</c>, then per shard <c>kind args|input shape|batch|input gradient</c>, then an empty line.</summary>
    public static string Format(IReadOnlyList<ComputeShard> chain, int torchThreads) =>
        string.Create(CultureInfo.InvariantCulture, $"threads {torchThreads}\n") +
        string.Concat(chain.Select(s => string.Create(CultureInfo.InvariantCulture,
            $"{string.Join(' ', [s.Layer.Kind, .. s.Layer.Args.Select(a => a.ToString(CultureInfo.InvariantCulture))])}|{string.Join('x', s.InputShape)}|{s.Batch}|{(s.InputGradient ? 1 : 0)}\n"))) + "\n";

    /// <summary>Reads <see cref="Format"/>'s text up to its empty line: the libtorch threads and the chain.</summary>
    public static (int Threads, IReadOnlyList<ComputeShard> Chain) Parse(TextReader input)
    {
        var first = input.ReadLine() ?? throw new InputException("no chain on standard input");
        if (!first.StartsWith("threads ", StringComparison.Ordinal) || !int.TryParse(first[8..], CultureInfo.InvariantCulture, out var threads))
        {
            throw new InputException($"expected 'threads N', not '{first}'");
        }

        var chain = new List<ComputeShard>();
        while (input.ReadLine() is { Length: > 0 } line)
        {
            var parts = line.Split('|');
            var spec = parts[0].Split(' ');
            try
            {
                chain.Add(new ComputeShard(new LayerSpec(spec[0], [.. spec[1..].Select(a => long.Parse(a, CultureInfo.InvariantCulture))]),
                    [.. parts[1].Split('x').Select(d => int.Parse(d, CultureInfo.InvariantCulture))], int.Parse(parts[2], CultureInfo.InvariantCulture), parts[3] == "1"));
            }
            catch (Exception error) when (error is FormatException or OverflowException or IndexOutOfRangeException)
            {
                throw new InputException($"not a shard 'kind args|input shape|batch|input gradient': '{line}'");
            }
        }

        return (threads, chain);
    }

    /// <summary>The load process: reads the chain, warms it up, says <c>ready</c>, steps until its input closes.</summary>
    public static int Run(TextReader input, TextWriter output)
    {
        var (threads, chain) = Parse(input);
        TorchRuntime.Threads = threads;
        var closed = false;
        void Ready()
        {
            output.WriteLine(ReadyLine);
            output.Flush();
            new Thread(() =>
            {
                while (input.Read() >= 0)
                {
                }

                Volatile.Write(ref closed, true);
            }) { IsBackground = true }.Start();
        }

        try
        {
            Step(chain, () => Volatile.Read(ref closed), Ready);
        }
        catch (TorchException error)
        {
            // One line for the measuring process to pass on, not a stack trace.
            throw new InputException(error.Message);
        }

        return 0;
    }

    /// <summary>Steps the chain (<see cref="MeasuredLayerTimes.ChainSteps"/>): its warm-ups, then <paramref name="ready"/>, then until <paramref name="stopped"/>.</summary>
    private static void Step(IReadOnlyList<ComputeShard> chain, Func<bool> stopped, Action ready)
    {
        using var steps = new MeasuredLayerTimes.ChainSteps(chain);
        for (var run = 0; run < MeasuredLayerTimes.WarmUps; run++)
        {
            steps.Step(run);
        }

        ready();
        for (var run = 0; !stopped(); run++)
        {
            steps.Step(run);
        }
    }
}
